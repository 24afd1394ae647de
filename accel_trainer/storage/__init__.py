"""What touches disk: the commit protocol and manifests of checkpoints and the final model,
rotation, the resume point, the output folder's rules and lock, the write policy for files
beside a user's own, prediction files, hashing and disk-space messages; no process groups."""
