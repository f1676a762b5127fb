"""The command line's commands: arguments, `rsacfn train`, `rsacfn sweep`, `rsacfn predict` and `rsacfn evaluate`."""
