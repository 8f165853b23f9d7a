"""Built-in load predictors: reactive, max, mean and moving-window-max."""
