"""``python -m kdlib.data check <dataset>``: list every file of a dataset that does not decode."""
import sys

from kdlib.data.check import main

sys.exit(main())
