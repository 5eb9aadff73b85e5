"""Write a greeting to the declared output path."""

import argparse
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--who", default="world")
parser.add_argument("--greeting", required=True, help="output path")
args = parser.parse_args()
Path(args.greeting).write_text(f"hello, {args.who}\n")
print(f"wrote {args.greeting}")
