#!/bin/sh
# assemble-python.sh BASE STAGING [DIR...]
#
# Runs in a python:3.X-slim stage. Stages this image's CPython (/usr/local) for a distroless base
# whose root filesystem is copied at BASE: the interpreter, its standard library (bytecode
# compiled, checked-hash) without tests, IDLE, tkinter and ensurepip, and, in the multiarch library
# directory, exactly the shared libraries that the interpreter, its extension modules and the
# extension modules found under each DIR (the venv) load and BASE does not already have. The list
# comes from ldd, not from a guess; it is written to /usr/local/share/vardr/python-shared-libs.txt.
set -eu
base=$1
out=$2
shift 2

py=$(readlink -f /usr/local/bin/python3)
ver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
ma=$("$py" -c 'import sysconfig; print(sysconfig.get_config_var("MULTIARCH") or "")')
if [ -z "$ma" ]; then
    echo "assemble-python: $py reports no MULTIARCH triplet" >&2
    exit 1
fi
stdlib=/usr/local/lib/python$ver
libdir=/usr/lib/$ma

# What a server never needs (the official images drop the tests too).
find "$stdlib" -depth -type d \( -name test -o -name tests -o -name idle_test \) -exec rm -rf {} +
rm -rf "$stdlib/idlelib" "$stdlib/tkinter" "$stdlib/turtledemo" "$stdlib/ensurepip" \
    "$stdlib"/config-"$ver"* "$stdlib"/lib-dynload/_tkinter*
find "$stdlib/site-packages" -mindepth 1 -maxdepth 1 ! -name README.txt -exec rm -rf {} +
find "$stdlib" -name '*.pyc' -delete
"$py" -m compileall -q -j 0 --invalidation-mode checked-hash "$stdlib"

mkdir -p "$out/usr/local/bin" "$out/usr/local/lib" "$out/usr/local/share/vardr" "$out$libdir"
cp -a "$py" "$out/usr/local/bin/"
ln -s "python$ver" "$out/usr/local/bin/python3"
ln -s "python$ver" "$out/usr/local/bin/python"
cp -a "$stdlib" "$out/usr/local/lib/"

# Every ELF file Python will map, and what the dynamic loader resolves for each.
list=$(mktemp)
{
    echo "$py"
    find "$stdlib/lib-dynload" "$@" -type f -name '*.so*'
} | while read -r elf; do
    ldd "$elf" | sed "s|^|$elf: |"
done >"$list"
if grep -q 'not found' "$list"; then
    echo "assemble-python: unresolved libraries in this image:" >&2
    grep 'not found' "$list" >&2
    exit 1
fi

in_base() {
    for dir in "/lib/$ma" "/usr/lib/$ma" /lib /usr/lib /lib64; do
        if [ -e "$base$dir/$1" ] || [ -L "$base$dir/$1" ]; then
            return 0
        fi
    done
    return 1
}

manifest=$out/usr/local/share/vardr/python-shared-libs.txt
echo "# shared libraries added to the distroless base for CPython $ver, from ldd (name <- path in the python image)" >"$manifest"
awk '$3 == "=>" && $4 ~ /^\// { print $4 } $2 ~ /^\// { print $2 }' "$list" | sort -u |
    while read -r path; do
        name=${path##*/}
        if in_base "$name"; then
            continue
        fi
        cp -L "$path" "$out$libdir/$name"
        echo "$name <- $path" >>"$manifest"
    done
rm -f "$list"
cat "$manifest"
