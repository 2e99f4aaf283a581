import sys

from kubectl_preevy.cli import main

sys.exit(main())
