#!/bin/sh
# Rebuilds the invoice fonts in this folder from Debian's fonts-noto-cjk (Noto Sans CJK 2.004):
# the Simplified Chinese face (number 2 in the .ttc) of the Regular and Bold weights, cut down
# to what Chinese and English invoices print. Needs `apt-get install fonts-noto-cjk` and
# `pip install fonttools`. Run from anywhere; writes next to this script.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
src=/usr/share/fonts/opentype/noto
list="$(mktemp)"
trap 'rm -f "$list"' EXIT

# The characters kept, one U+XXXX per line:
# - every character of GB2312 (its 6,763 hanzi and its symbol rows: full-width ASCII, CJK
#   punctuation, pinyin with tone marks, Greek, Cyrillic, kana, box drawing);
# - ASCII, Latin-1 and Latin Extended-A (Latin names and addresses), general punctuation, the
#   currency signs, letterlike symbols (No.), arrows, CJK symbols and punctuation, and the
#   half- and full-width forms block.
python3 - "$list" <<'PY'
import sys
chars = set()
for hi in range(0xA1, 0xF8):
    for lo in range(0xA1, 0xFF):
        try:
            chars.update(bytes([hi, lo]).decode("gb2312"))
        except UnicodeDecodeError:
            pass
for a, b in [(0x20, 0x7E), (0xA0, 0x17F), (0x2000, 0x206F), (0x20A0, 0x20BF),
             (0x2100, 0x214F), (0x2190, 0x21FF), (0x3000, 0x303F), (0xFF00, 0xFFEF)]:
    chars.update(map(chr, range(a, b + 1)))
with open(sys.argv[1], "w") as f:
    f.writelines(f"U+{ord(c):04X}\n" for c in sorted(chars))
PY

for weight in Regular Bold; do
    pyftsubset "$src/NotoSansCJK-$weight.ttc" --font-number=2 \
        --unicodes-file="$list" \
        --layout-features+=tnum,pnum,fwid,hwid,pwid,halt,palt \
        --no-hinting \
        --output-file="$here/NotoSansCJKsc-$weight-subset.otf"
done
ls -l "$here"/*.otf
