# A feature script for testing: enable the feature `Octopus.Features.HelloWorld` and it
# runs before the PreDeploy scripts.
echo "Hello World!"
