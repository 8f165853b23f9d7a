"""Reading inputs: the config file, IPA's configs, pipeline and profile files, and the bounded YAML and number readers they share."""
