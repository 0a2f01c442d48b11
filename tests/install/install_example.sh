#!/usr/bin/env bash
# Installs a build into a scratch prefix and proves the package stands on its own:
#  1. every installed header compiles alone, with only the prefix on the include path;
#  2. examples/publish_subscribe builds with find_package(shmbus) and runs;
#  3. the same example builds with `pkg-config --cflags --libs shmbus` and runs.
# Usage: install_example.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
source=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

cmake --install "$build" --prefix "$prefix" >/dev/null

echo "== installed headers"
(cd "$prefix/include" && find . -type f | sort)
for header in $(cd "$prefix/include" && find shmbus -name '*.hpp' | sort); do
  echo "#include <$header>" > "$work/one_header.cpp"
  if ! g++ -std=c++20 -mcx16 -fsyntax-only -I"$prefix/include" "$work/one_header.cpp"; then
    echo "FAIL: installed header $header does not compile on its own" >&2
    exit 1
  fi
done

echo "== find_package(shmbus)"
cmake -S "$source/examples/publish_subscribe" -B "$work/with-cmake" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/with-cmake" >/dev/null
"$work/with-cmake/publish_subscribe"

echo "== pkg-config shmbus"
pc=$(dirname "$(find "$prefix" -name shmbus.pc | head -n 1)")
flags=$(PKG_CONFIG_PATH=$pc pkg-config --cflags --libs --static shmbus)
# shellcheck disable=SC2086  # the flags are words
g++ -O2 "$source/examples/publish_subscribe/main.cpp" -o "$work/with-pkg-config" $flags
"$work/with-pkg-config"
echo "== the installed package builds and runs the example"
