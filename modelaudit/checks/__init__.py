"""The rules, one module per family; each rule a class registered with the engine."""
