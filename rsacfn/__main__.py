"`python -m rsacfn ...` (and `accelerate launch -m rsacfn ...`) is the `rsacfn` command."
import sys
from rsacfn.cli import main

sys.exit(main())
