#!/usr/bin/env bash
# Builds the agent's MSI on Linux with wixl, then applies with msibuild what wixl's XML cannot
# say, and signs it when a key is given.
#
#   build-msi.sh VERSION AGENT_EXE OUT_MSI [TRAY_EXE WEBVIEW2_LOADER_DLL]
#
# With the tray, the MSI starts it at logon (it starts the agent) and requires the WebView2
# runtime; without it, the agent itself is started at logon.
#
# Signing (osslsigncode, Authenticode SHA-256), by environment:
#   CAPTURE_SIGN_PFX + CAPTURE_SIGN_PASSWORD     a PKCS#12 file (CI: a throwaway test certificate)
#   CAPTURE_SIGN_PKCS11_MODULE + CAPTURE_SIGN_PKCS11_CERT + CAPTURE_SIGN_PKCS11_KEY
#                                                the release key on a token/HSM (CA/B Forum rule)
#   CAPTURE_SIGN_TIMESTAMP_URL                   an RFC 3161 time-stamping service (release)
# Fails on any wixl warning (an attribute or element wixl ignored would silently change the MSI).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version="$1" agent="$2" out="$3" tray="${4:-}" loader="${5:-}"

# wixl takes sources relative to the .wxs: stage both, stripped of their debug information
# (a release build keeps line tables for backtraces; the MSI carries the program alone).
stage="$(mktemp -d)"
log="$stage/wixl.log"
trap 'rm -rf "$stage"' EXIT
strip_exe() { x86_64-w64-mingw32-strip -o "$2" "$1" 2>/dev/null || cp "$1" "$2"; }
cp "$here/agent.wxs" "$stage/"
strip_exe "$agent" "$stage/capture-agent.exe"
defines=(-D "Version=$version" -D "AgentExe=capture-agent.exe")
if [ -n "$tray" ]; then
    [ -f "$loader" ] || { echo "build-msi: the tray needs WebView2Loader.dll (5th argument)" >&2; exit 1; }
    strip_exe "$tray" "$stage/capture-tray.exe"
    cp "$loader" "$stage/WebView2Loader.dll"
    defines+=(-D "TrayExe=capture-tray.exe")
fi
unsigned="$(realpath -m "$out").unsigned"
if ! (cd "$stage" && wixl -v -a x64 "${defines[@]}" -o "$unsigned" agent.wxs) >"$log" 2>&1; then
    cat "$log" >&2
    echo "build-msi: wixl failed" >&2
    exit 1
fi
if grep -iE "warning|ignored|unhandled|has no property" "$log" >&2; then
    echo "build-msi: wixl ignored part of agent.wxs (above): fix it, the MSI would differ from its source" >&2
    exit 1
fi

q() { msibuild "$unsigned" -q "$1"; }
# Public properties an elevated install may take from the (unprivileged) client side.
q "UPDATE \`Property\` SET \`Value\`='WIX_DOWNGRADE_DETECTED;WIX_UPGRADE_DETECTED;SERVER_URL;ENROLLMENT_TOKEN;SERVER_CA_SHA256;PROXY_URL;AUTOSTART;CMDLINE_SERVER_URL;CMDLINE_ENROLLMENT_TOKEN;CMDLINE_SERVER_CA_SHA256;CMDLINE_PROXY_URL;CMDLINE_AUTOSTART' WHERE \`Property\`='SecureCustomProperties'"
# Component conditions (wixl 0.101 has no <Condition> inside <Component>).
q "UPDATE \`Component\` SET \`Condition\`='SERVER_CA_SHA256' WHERE \`Component\`='CaPin'"
q "UPDATE \`Component\` SET \`Condition\`='PROXY_URL' WHERE \`Component\`='Proxy'"
q "UPDATE \`Component\` SET \`Condition\`='ENROLLMENT_TOKEN' WHERE \`Component\`='EnrollmentToken'"
q "UPDATE \`Component\` SET \`Condition\`='AUTOSTART<>\"0\"' WHERE \`Component\`='Autostart'"
# Uninstall removes the whole settings key, with the Enrollment key an agent may have emptied (a
# Registry row named "-" without a value; wixl 0.101 has no RegistryKey/@Action).
q "INSERT INTO \`Registry\` (\`Registry\`, \`Root\`, \`Key\`, \`Name\`, \`Component_\`) VALUES ('RemoveSettingsKey', 2, 'Software\\Capture\\Agent', '-', 'MachineSettings')"
# The token's key: administrators and SYSTEM as usual, and the machine's users may read it and
# delete the value once their agent has traded it for a credential (KEY_READ | KEY_SET_VALUE).
idt="$stage/idt"
mkdir "$idt"
{
    printf 'MsiLockPermissionsEx\tLockObject\tTable\tSDDLText\tCondition\n'
    printf 's72\ts72\ts32\ts0\tS255\n'
    printf 'MsiLockPermissionsEx\tMsiLockPermissionsEx\n'
    printf 'TokenKeyAcl\tEnrollmentTokenValue\tRegistry\t%s\t\n' \
        'D:(A;;KA;;;SY)(A;;KA;;;BA)(A;;0x2001b;;;BU)'
} >"$idt/MsiLockPermissionsEx.idt"
(cd "$idt" && msibuild "$unsigned" -i MsiLockPermissionsEx.idt)

if [ -n "${CAPTURE_SIGN_PFX:-}" ] || [ -n "${CAPTURE_SIGN_PKCS11_MODULE:-}" ]; then
    sign=(osslsigncode sign -h sha256 -n "Capture Agent" -i "https://github.com/capture-recording/capture")
    if [ -n "${CAPTURE_SIGN_PKCS11_MODULE:-}" ]; then
        sign+=(-pkcs11module "$CAPTURE_SIGN_PKCS11_MODULE" -pkcs11cert "$CAPTURE_SIGN_PKCS11_CERT" -key "$CAPTURE_SIGN_PKCS11_KEY")
    else
        sign+=(-pkcs12 "$CAPTURE_SIGN_PFX" -pass "${CAPTURE_SIGN_PASSWORD:-}")
    fi
    if [ -n "${CAPTURE_SIGN_TIMESTAMP_URL:-}" ]; then
        sign+=(-ts "$CAPTURE_SIGN_TIMESTAMP_URL")
    fi
    rm -f "$out"
    "${sign[@]}" -in "$unsigned" -out "$out" >/dev/null
    rm -f "$unsigned"
else
    mv "$unsigned" "$out"
fi
echo "$out"
