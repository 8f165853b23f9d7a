pytest_plugins = ["ipa_ext.testing.fixtures"]
