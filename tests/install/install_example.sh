#!/usr/bin/env bash
# Installs a build into a scratch prefix, moves the installed tree elsewhere, and proves that the
# package stands on its own from there, in both kinds (libshmbus.a and libshmbus.so):
#  1. every installed header compiles alone, with only the prefix on the include path;
#  2. libshmbus.so exports every function the headers declare (check_exports.py), nothing
#     internal lands on a consumer's include path, the .pc files are valid;
#     The C API's headers (*.h) compile alone as C99, as C11 and as C++;
#  3. examples/publish_subscribe, tests/install/journal_consumer (Journaler + JournalReader) and
#     tests/install/c_consumer (a C program, the C API) build with find_package(shmbus), setting
#     no C++ standard, against the static library and against the shared one, and run;
#  4. all three build with a plain `pkg-config --cflags --libs` (no --static), shmbus (the static
#     library) and shmbus-shared, and run (the C one compiled and linked by gcc).
# Usage: install_example.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
source=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# The two consumers build side by side; wait_all fails when either build failed.
builds=()
wait_all() {
  local build_pid
  for build_pid in "${builds[@]}"; do wait "$build_pid"; done
  builds=()
}

cmake --install "$build" --prefix "$work/installed-here" >/dev/null
# Moved after installing: nothing in the tree may still point at where it was installed.
mkdir -p "$work/moved"
mv "$work/installed-here" "$work/moved/prefix"
prefix=$work/moved/prefix
examples=("$source/examples/publish_subscribe" "$source/tests/install/journal_consumer"
  "$source/tests/install/c_consumer")

echo "== installed headers"
(cd "$prefix/include" && find . -type f | sort)
for header in $(cd "$prefix/include" && find shmbus -name '*.hpp' | sort); do
  echo "#include <$header>" > "$work/one_header.cpp"
  g++ -std=c++20 -mcx16 -fsyntax-only -I"$prefix/include" "$work/one_header.cpp" ||
    fail "installed header $header does not compile on its own"
done

for header in $(cd "$prefix/include" && find shmbus -name '*.h' | sort); do
  # (a declaration after it: ISO C forbids an empty translation unit, as version.h alone is)
  printf '#include <%s>\nint one_header;\n' "$header" > "$work/one_header.c"
  for standard in c99 c11; do
    gcc -std=$standard -Wall -Wextra -Wpedantic -Werror -fsyntax-only -I"$prefix/include" \
      "$work/one_header.c" || fail "installed header $header does not compile alone as $standard"
  done
  g++ -std=c++20 -Wall -Wextra -Werror -fsyntax-only -x c++ -I"$prefix/include" \
    "$work/one_header.c" || fail "installed header $header does not compile alone as C++"
done

echo "== what the package exports"
libdir=$(dirname "$(find "$prefix" -name libshmbus.a)")
python3 "$source/tests/install/check_exports.py" "$prefix/include" "$libdir/libshmbus.a" \
  "$libdir/libshmbus.so"
grep -q 'INTERFACE_INCLUDE_DIRECTORIES "${_IMPORT_PREFIX}/include"$' \
  "$libdir/cmake/shmbus/shmbusStaticTargets.cmake" ||
  fail "shmbus::shmbus_static puts more than <prefix>/include on the include path"
if grep -q 'shmbus_warnings\|shmbus_sanitizers\|shmbus_core' "$libdir"/cmake/shmbus/*.cmake; then
  fail "the exported targets name the build's internal targets"
fi
export PKG_CONFIG_PATH=$libdir/pkgconfig
for module in shmbus shmbus-static shmbus-shared; do
  pkg-config --validate "$module" || fail "$module.pc is not valid"
done

# Runs a consumer and checks that it links libshmbus the way it should: $2 = static or shared.
run_linked() {
  local program=$1 kind=$2
  if readelf -d "$program" | grep -q 'NEEDED.*libshmbus\.so'; then
    [[ $kind == shared ]] || fail "$program links libshmbus.so, not the static library"
  else
    [[ $kind == static ]] || fail "$program does not link libshmbus.so"
  fi
  "$program"
}

for kind in static shared; do
  echo "== find_package(shmbus), $kind"
  shared=$([[ $kind == shared ]] && echo ON || echo OFF)
  for example in "${examples[@]}"; do
    name=$(basename "$example")
    cmake -S "$example" -B "$work/cmake-$kind-$name" -DCMAKE_PREFIX_PATH="$prefix" \
      -DCMAKE_BUILD_TYPE=Release -Dshmbus_SHARED_LIBS=$shared >/dev/null
    cmake --build "$work/cmake-$kind-$name" >/dev/null &
    builds+=($!)
  done
  wait_all
  for example in "${examples[@]}"; do
    name=$(basename "$example")
    run_linked "$work/cmake-$kind-$name/$name" "$kind"
  done
done

# The compile flags are the same for both modules: each consumer is compiled once, linked twice.
echo "== pkg-config --cflags --libs"
# The C consumer is compiled and linked by gcc: the flags must serve a C program too (gcc only
# warns that the C++ standard flag is not for C).
compiler_of() { [[ -f $1/main.c ]] && echo gcc || echo g++; }
for example in "${examples[@]}"; do
  main=$example/main.cpp
  [[ -f $example/main.c ]] && main=$example/main.c
  # shellcheck disable=SC2046  # the flags are words
  $(compiler_of "$example") -O2 -c "$main" -o "$work/$(basename "$example").o" \
    $(pkg-config --cflags shmbus) &
  builds+=($!)
done
wait_all
for example in "${examples[@]}"; do
  name=$(basename "$example")
  linker=$(compiler_of "$example")
  # shellcheck disable=SC2046
  $linker "$work/$name.o" -o "$work/pc-static-$name" $(pkg-config --libs shmbus)
  run_linked "$work/pc-static-$name" static
  # shellcheck disable=SC2046
  $linker "$work/$name.o" -o "$work/pc-shared-$name" $(pkg-config --libs shmbus-shared)
  LD_LIBRARY_PATH=$libdir run_linked "$work/pc-shared-$name" shared
done
echo "== the installed package builds and runs the examples, static and shared"
