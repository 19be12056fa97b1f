#!/usr/bin/env bash
# Builds every package of the agent into target/installer/ and checks each:
#   capture-agent_<v>_amd64.deb   headless agent, systemd user unit (VDI, terminal servers)
#   capture-tray_<v>_amd64.deb    the tray (depends on capture-agent), /etc/xdg/autostart entry
#   CaptureAgent-<v>-x64.msi      Windows, per machine, public properties (wixl; signed when a
#                                 key is given: see installer/windows/build-msi.sh)
#   macos/                        the pkg's layout, scripts, Distribution and profile, checked;
#                                 the pkg itself is built on a macOS runner (build-pkg-macos.sh)
# Needs: cargo-deb (`cargo install cargo-deb --locked`), wixl + msitools, mingw-w64 and the
# x86_64-pc-windows-gnu Rust target, libxml2-utils, desktop-file-utils, python3 (all installed by
# .ci/run). CAPTURE_INSTALLER_OUT overrides the output directory.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
out="${CAPTURE_INSTALLER_OUT:-$repo/target/installer}"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)"
windows_target=x86_64-pc-windows-gnu
rm -rf "$out"
mkdir -p "$out"
fail() { echo "installer/build.sh: $*" >&2; exit 1; }

echo "== Linux: release build and debs"
cargo build --release --locked -p capture-agent -p capture-tray
command -v cargo-deb >/dev/null || fail "cargo-deb is missing: cargo install cargo-deb --locked"
cargo deb --no-build --locked --strip -p capture-agent -o "$out" >/dev/null
cargo deb --no-build --locked --strip -p capture-tray -o "$out" >/dev/null
agent_deb="$(ls "$out"/capture-agent_*.deb)"
tray_deb="$(ls "$out"/capture-tray_*.deb)"
check_deb() {
    local deb="$1"; shift
    local listing
    listing="$(dpkg-deb -c "$deb")"
    for path in "$@"; do
        grep -q " \./$path\$" <<<"$listing" || fail "$deb lacks /$path"
    done
    grep -v ' 0/0 ' <<<"$listing" && fail "$deb has files not owned by root"
    true
}
check_deb "$agent_deb" usr/bin/capture-agent usr/lib/systemd/user/capture-agent.service \
    etc/capture/agent.toml usr/share/doc/capture-agent/README.Debian
check_deb "$tray_deb" usr/bin/capture-tray etc/xdg/autostart/capture-tray.desktop \
    usr/share/applications/capture-tray.desktop usr/share/icons/hicolor/64x64/apps/capture-agent.png
dpkg-deb -f "$tray_deb" Depends | grep -q 'capture-agent' || fail "the tray's deb must depend on capture-agent"
dpkg-deb -f "$tray_deb" Depends | grep -q 'libayatana-appindicator3-1' || fail "the tray's deb must depend on its tray library"
dpkg-deb -f "$agent_deb" Conffiles >/dev/null
dpkg-deb --ctrl-tarfile "$agent_deb" | tar -tf - | grep -q conffiles || fail "agent.toml must be a conffile"
desktop-file-validate installer/linux/capture-tray.desktop installer/linux/capture-tray-autostart.desktop
if command -v systemd-analyze >/dev/null; then
    # The unit's syntax and settings (its binary need not exist here).
    verified="$(systemd-analyze verify --man=no installer/linux/capture-agent.service 2>&1 \
        | grep -v 'capture-agent is not executable' || true)"
    [ -z "$verified" ] || fail "capture-agent.service does not verify: $verified"
fi

echo "== Windows: cross build and MSI"
if rustup target list --installed 2>/dev/null | grep -qx "$windows_target"; then
    cargo build --release --locked --target "$windows_target" -p capture-agent -p capture-tray
    # Microsoft's WebView2 loader, as the webview2-com-sys build unpacked it (the newest build).
    loader="$(ls -t "$target_dir/$windows_target"/release/build/webview2-com-sys-*/out/x64/WebView2Loader.dll | head -n 1)"
    bash installer/windows/build-msi.sh "$version" \
        "$target_dir/$windows_target/release/capture-agent.exe" \
        "$out/CaptureAgent-$version-x64.msi" \
        "$target_dir/$windows_target/release/capture-tray.exe" "$loader" >/dev/null
    msiinfo export "$out/CaptureAgent-$version-x64.msi" Property | grep -q '^ALLUSERS	1' \
        || fail "the MSI is not per-machine"
else
    echo "WINDOWS MSI SKIPPED: the $windows_target Rust target is not installed"
fi

echo "== macOS: the pkg layout (binaries come from a macOS runner)"
layout="$out/macos"
app="$layout/root/Applications/Capture Agent.app/Contents"
mkdir -p "$app/MacOS" "$app/Resources" "$layout/root/Library/LaunchAgents" "$layout/scripts" "$layout/profiles"
sed "s/@VERSION@/$version/g" installer/macos/app/Info.plist >"$app/Info.plist"
cp installer/macos/payload/Library/LaunchAgents/org.capture.tray.plist "$layout/root/Library/LaunchAgents/"
cp installer/macos/scripts/preinstall installer/macos/scripts/postinstall "$layout/scripts/"
sed "s/@VERSION@/$version/g" installer/macos/Distribution.xml >"$layout/Distribution.xml"
cp installer/macos/profiles/capture-agent.mobileconfig "$layout/profiles/"
cp installer/macos/build-pkg-macos.sh "$layout/"
chmod 644 "$app/Info.plist" "$layout/root/Library/LaunchAgents/org.capture.tray.plist"
chmod 755 "$layout/scripts/preinstall" "$layout/scripts/postinstall" "$layout/build-pkg-macos.sh"
python3 - "$layout" "$version" <<'PY' || fail "the macOS layout does not check"
import os, plistlib, stat, sys
layout, version = sys.argv[1], sys.argv[2]
def load(path):
    with open(os.path.join(layout, path), "rb") as f:
        return plistlib.load(f)
info = load("root/Applications/Capture Agent.app/Contents/Info.plist")
assert info["CFBundleIdentifier"] == "org.capture.agent", info
assert info["CFBundleExecutable"] == "capture-tray" and info["LSUIElement"] is True
assert info["CFBundleShortVersionString"] == version
agent = load("root/Library/LaunchAgents/org.capture.tray.plist")
assert agent["Label"] == "org.capture.tray"
assert agent["ProgramArguments"] == ["/Applications/Capture Agent.app/Contents/MacOS/capture-tray"]
assert agent["RunAtLoad"] is True and agent["KeepAlive"] == {"SuccessfulExit": False}
profile = load("profiles/capture-agent.mobileconfig")
payloads = {p["PayloadType"]: p for p in profile["PayloadContent"]}
settings = payloads["com.apple.ManagedClient.preferences"]["PayloadContent"]["org.capture.agent"]
keys = set(settings["Forced"][0]["mcx_preference_settings"])
assert keys == {"ServerUrl", "ServerCaSha256", "ProxyUrl", "EnrollmentToken"}, keys
screen = payloads["com.apple.TCC.configuration-profile-policy"]["Services"]["ScreenCapture"][0]
assert screen["Identifier"] == "org.capture.agent" and screen["IdentifierType"] == "bundleID"
assert screen["Authorization"] == "AllowStandardUserToSetSystemService" and "Allowed" not in screen
uuids = [profile["PayloadUUID"]] + [p["PayloadUUID"] for p in profile["PayloadContent"]]
assert len(set(uuids)) == len(uuids)
for script in ("scripts/preinstall", "scripts/postinstall"):
    mode = os.stat(os.path.join(layout, script)).st_mode
    assert stat.S_IMODE(mode) == 0o755, (script, oct(mode))
PY
xmllint --noout "$layout/Distribution.xml"
grep -q "version=\"$version\"" "$layout/Distribution.xml" || fail "Distribution.xml's version"
for script in "$layout"/scripts/*; do sh -n "$script"; done
# The payload as pkgbuild will own it (root:wheel), for review and for the macOS runner.
tar --owner=0 --group=0 --numeric-owner -czf "$out/CaptureAgent-$version-macos-layout.tar.gz" -C "$layout" .

echo "== packages"
ls -l "$out" | grep -v '^total'
