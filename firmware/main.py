"""Board entry point: kept tiny so nothing is compiled on the device heap."""
import sys

import app

app.main(sys.argv[1:])
