/* Test harness only, never shipped: Wine 8 lacks bcryptprimitives.dll, from which Rust's std
 * (>= 1.78) takes its randomness on Windows. This DLL, placed beside the test's executables,
 * exports ProcessPrng over RtlGenRandom (advapi32's SystemFunction036), which Wine has. */
#include <windows.h>
#include <ntsecapi.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!RtlGenRandom(data, chunk)) {
            return FALSE;
        }
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
