#!/usr/bin/env bash
# Builds, signs and notarises Capture Agent's pkg. Runs on a macOS runner (Xcode command-line
# tools, Rust with both Apple targets); not on Linux, where `installer/build.sh` assembles and
# checks the same layout without the binaries.
#
#   build-pkg-macos.sh VERSION OUT_DIR
#
# Environment for a release: CAPTURE_MAC_APP_IDENTITY ("Developer ID Application: …"),
# CAPTURE_MAC_INSTALLER_IDENTITY ("Developer ID Installer: …"), CAPTURE_NOTARY_PROFILE (a
# `xcrun notarytool store-credentials` profile). Without them the pkg is built unsigned.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
version="$1" out="$2"
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for target in aarch64-apple-darwin x86_64-apple-darwin; do
    cargo build --release --locked --target "$target" -p capture-agent -p capture-tray \
        --manifest-path "$repo/Cargo.toml"
done
target_dir="${CARGO_TARGET_DIR:-$repo/target}"

root="$work/root"
app="$root/Applications/Capture Agent.app"
mkdir -p "$app/Contents/MacOS" "$app/Contents/Resources" "$root/Library/LaunchAgents"
for bin in capture-agent capture-tray; do
    lipo -create -output "$app/Contents/MacOS/$bin" \
        "$target_dir/aarch64-apple-darwin/release/$bin" "$target_dir/x86_64-apple-darwin/release/$bin"
done
sed "s/@VERSION@/$version/g" "$here/app/Info.plist" >"$app/Contents/Info.plist"
mkdir -p "$work/icon.iconset"
sips -z 512 512 "$repo/desktop-agent/tray/icons/icon.png" --out "$work/icon.iconset/icon_256x256@2x.png" >/dev/null
iconutil -c icns -o "$app/Contents/Resources/icon.icns" "$work/icon.iconset"
cp "$here/payload/Library/LaunchAgents/org.capture.tray.plist" "$root/Library/LaunchAgents/"

if [ -n "${CAPTURE_MAC_APP_IDENTITY:-}" ]; then
    # Hardened runtime and a secure timestamp: what notarisation requires. The agent first.
    codesign --force --options runtime --timestamp --sign "$CAPTURE_MAC_APP_IDENTITY" \
        --identifier org.capture.agent "$app/Contents/MacOS/capture-agent"
    codesign --force --options runtime --timestamp --sign "$CAPTURE_MAC_APP_IDENTITY" "$app"
fi

pkgbuild --root "$root" --scripts "$here/scripts" --identifier org.capture.agent.pkg \
    --version "$version" --install-location / "$work/agent.pkg"
sed "s/@VERSION@/$version/g" "$here/Distribution.xml" >"$work/Distribution.xml"
product="$out/CaptureAgent-$version.pkg"
sign=()
if [ -n "${CAPTURE_MAC_INSTALLER_IDENTITY:-}" ]; then
    sign=(--sign "$CAPTURE_MAC_INSTALLER_IDENTITY")
fi
productbuild --distribution "$work/Distribution.xml" --package-path "$work" "${sign[@]}" "$product"
if [ -n "${CAPTURE_NOTARY_PROFILE:-}" ]; then
    xcrun notarytool submit "$product" --keychain-profile "$CAPTURE_NOTARY_PROFILE" --wait
    xcrun stapler staple "$product"
fi
cp "$here/profiles/capture-agent.mobileconfig" "$out/"
echo "$product"
