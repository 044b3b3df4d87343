# The HelloWorld feature's PowerShell script: a feature for testing the feature conventions.
Write-Output "Hello World!"
