"""The `evergreen` sub-commands: one module each, with configure() and main()."""
