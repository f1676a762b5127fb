"""The model: layers, backbones, the registry of methods, the fusion heads, `MultiModel` and the tiny backbones."""
