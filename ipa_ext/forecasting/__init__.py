"""Numpy-only load forecasting models: IPA's LSTM (forward, backward, training, weights files) and AR(p).

The predictor plugins that put them in the adaptation loop live in ``ipa_ext_plugins.lstm``
and ``ipa_ext_plugins.ar``; ``ipa-ext predictor train`` trains the LSTM.
"""
