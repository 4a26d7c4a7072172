/*
 * A PKCS#11 module that stands in front of a real one (SoftHSM in the tests) and makes its cipher
 * calls fail on demand, as an HSM does when it drops off the network or its device errors: the fault
 * tests (test/support/faulty-pkcs11.ts) switch the fault on and off from outside the process under test.
 *
 *   FAULTY_PKCS11_MODULE  the real module, dlopen()ed at the first C_GetFunctionList
 *   FAULTY_PKCS11_FLAG    a file path: while that file exists, C_EncryptInit, C_Encrypt, C_DecryptInit
 *                         and C_Decrypt return CKR_DEVICE_ERROR (checked with access() on every call,
 *                         so another process can switch it); every other call is the real module's
 *
 * The function list handed out is a copy of the real one with those four entries replaced, so
 * sessions, logins and objects stay the real module's and survive a fault: the same session works
 * again once the flag is gone. A failed C_Encrypt/C_Decrypt ends the real module's operation as the
 * standard says a failed call does (else the next C_EncryptInit would find it still active).
 *
 * Built by the tests with `gcc -shared -fPIC` against pkcs11js's copy of the standard headers.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pkcs11/pkcs11.h>

static CK_FUNCTION_LIST_PTR real;
static CK_FUNCTION_LIST faulty;

static int faulted(void) {
  const char *flag = getenv("FAULTY_PKCS11_FLAG");
  return flag != NULL && flag[0] != '\0' && access(flag, F_OK) == 0;
}

/* Ends the real module's active encryption or decryption by finishing it, and wipes what it wrote. */
static void end_operation(CK_C_Encrypt finish, CK_SESSION_HANDLE session, CK_BYTE_PTR in, CK_ULONG in_len) {
  CK_ULONG out_len = 0;
  if (finish(session, in, in_len, NULL_PTR, &out_len) != CKR_OK) return; /* (an error ended it already) */
  CK_BYTE_PTR out = malloc(out_len > 0 ? out_len : 1);
  if (out == NULL) return;
  finish(session, in, in_len, out, &out_len);
  memset(out, 0, out_len);
  free(out);
}

static CK_RV faulty_EncryptInit(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key) {
  if (faulted()) return CKR_DEVICE_ERROR;
  return real->C_EncryptInit(session, mechanism, key);
}

static CK_RV faulty_Encrypt(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
  if (faulted()) {
    end_operation(real->C_Encrypt, session, data, data_len);
    return CKR_DEVICE_ERROR;
  }
  return real->C_Encrypt(session, data, data_len, out, out_len);
}

static CK_RV faulty_DecryptInit(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key) {
  if (faulted()) return CKR_DEVICE_ERROR;
  return real->C_DecryptInit(session, mechanism, key);
}

static CK_RV faulty_Decrypt(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
  if (faulted()) {
    end_operation(real->C_Decrypt, session, data, data_len);
    return CKR_DEVICE_ERROR;
  }
  return real->C_Decrypt(session, data, data_len, out, out_len);
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list) {
  if (list == NULL_PTR) return CKR_ARGUMENTS_BAD;
  if (real == NULL_PTR) {
    const char *path = getenv("FAULTY_PKCS11_MODULE");
    if (path == NULL || path[0] == '\0') return CKR_GENERAL_ERROR;
    void *module = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (module == NULL) return CKR_GENERAL_ERROR;
    CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(module, "C_GetFunctionList");
    if (get == NULL || get(&real) != CKR_OK || real == NULL_PTR) {
      real = NULL_PTR;
      return CKR_GENERAL_ERROR;
    }
    faulty = *real;
    faulty.C_GetFunctionList = C_GetFunctionList;
    faulty.C_EncryptInit = faulty_EncryptInit;
    faulty.C_Encrypt = faulty_Encrypt;
    faulty.C_DecryptInit = faulty_DecryptInit;
    faulty.C_Decrypt = faulty_Decrypt;
  }
  *list = &faulty;
  return CKR_OK;
}
