"""modelaudit: a static auditor for saved Keras models.

    import modelaudit
    report = modelaudit.audit("model.keras")     # or a folder, a list, or a keras.Model
    assert report.ok, report.findings
    modelaudit.assert_clean(model)              # raises AssertionError listing the findings

Nothing heavy is imported until a model is read.
"""

__version__ = "0.1.0"

__all__ = ["audit", "assert_clean", "ModelAuditError", "Report", "FileReport", "Finding", "Severity", "ModelReadError", "__version__"]


def __getattr__(name):
    # Lazy: `import modelaudit` (and `modelaudit --help`) must stay cheap.
    if name in ("audit", "assert_clean", "ModelAuditError", "Report", "FileReport"):
        from modelaudit import api

        return getattr(api, name)
    if name in ("Finding", "Severity"):
        from modelaudit import engine

        return getattr(engine, name)
    if name == "ModelReadError":
        from modelaudit.errors import ModelReadError

        return ModelReadError
    raise AttributeError(f"module 'modelaudit' has no attribute {name!r}")
