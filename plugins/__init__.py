"""Built-in ipa-ext plugins, installed as the ``ipa_ext_plugins`` package.

Subpackages group them by kind (optimizers, energy, backends, objectives, predictors); each
module is one plugin, registered through the ``ipa_ext`` entry-point group exactly like a
third-party plugin.
"""
