"""Read the greeting (an input path) and write it in capitals."""

import argparse
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--greeting", required=True, help="input path")
parser.add_argument("--loud", required=True, help="output path")
args, _ = parser.parse_known_args()
text = Path(args.greeting).read_text().upper()
Path(args.loud).write_text(text)
print(text, end="")
