//! One module per subcommand: an `Args` struct (clap) and `exec`, which calls the library.

pub(crate) mod apply_delta;
pub(crate) mod bundle;
pub(crate) mod check_install;
pub(crate) mod clean;
pub(crate) mod clean_packages;
pub(crate) mod delta;
pub(crate) mod deploy_package;
pub(crate) mod download_package;
pub(crate) mod evaluate;
pub(crate) mod extract_package;
pub(crate) mod find_package;
pub(crate) mod fleet;
pub(crate) mod install;
pub(crate) mod installed_versions;
pub(crate) mod lock;
pub(crate) mod prune;
pub(crate) mod register_package;
pub(crate) mod release_package_lock;
pub(crate) mod releases;
pub(crate) mod rollback;
pub(crate) mod run_script;
pub(crate) mod structured_config_variables;
pub(crate) mod substitute_in_files;
pub(crate) mod substitute_variables_in_files;
pub(crate) mod transfer_package;
