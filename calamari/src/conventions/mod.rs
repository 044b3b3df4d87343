//! The `deploy-package` convention pipeline, in the reference's order (issue 6).
