/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * gw_softhsm.c - a fresh SoftHSM2 token directory for the C tests (see
 * gw_softhsm.h).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gw_softhsm.h"

int
gw_softhsm_write(const char *path, const char *s)
{
	size_t len = strlen(s);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int rc = 0;

	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	/* an existing file keeps its mode through O_CREAT: PINs are 0600 either way */
	errno = 0;
	if (fchmod(fd, 0600) != 0 || write(fd, s, len) != (ssize_t)len)
		rc = errno ? -errno : -EIO;
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
out:
	if (rc < 0) {
		errno = -rc;
		perror(path);
	}
	return rc;
}

int
gw_softhsm_setup(struct gw_softhsm *t, const char *prefix)
{
	char path[sizeof(t->dir) + 32], conf[sizeof(t->dir) + 128];
	int rc;

	errno = 0;
	snprintf(t->dir, sizeof(t->dir), "/tmp/%s.XXXXXX", prefix);
	if (mkdtemp(t->dir) == NULL) {
		rc = -errno;
		perror("mkdtemp");
		return rc;
	}
	snprintf(path, sizeof(path), "%s/tokens", t->dir);
	if (mkdir(path, 0700) != 0) {
		rc = -errno;
		perror(path);
		return rc;
	}
	snprintf(conf, sizeof(conf),
		"directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n",
		t->dir);
	snprintf(path, sizeof(path), "%s/softhsm2.conf", t->dir);
	GW_GUARD(gw_softhsm_write(path, conf));
	if (setenv("SOFTHSM2_CONF", path, 1) != 0) {
		rc = -errno;
		perror("setenv SOFTHSM2_CONF");
		return rc;
	}
	snprintf(t->pin, sizeof(t->pin), "%s/pin", t->dir);
	GW_GUARD(gw_softhsm_write(t->pin, "1234\n"));
	snprintf(t->so_pin, sizeof(t->so_pin), "%s/sopin", t->dir);
	return gw_softhsm_write(t->so_pin, "5678\n");
}

int
gw_softhsm_remove(const struct gw_softhsm *t)
{
	char cmd[sizeof(t->dir) + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "could not remove %s\n", t->dir);
		return -1;
	}
	return 0;
}

CK_FUNCTION_LIST *
gw_softhsm_module(void)
{
	static CK_FUNCTION_LIST *f;
	CK_RV (*get)(CK_FUNCTION_LIST_PTR_PTR);
	CK_C_INITIALIZE_ARGS a = {.flags = CKF_OS_LOCKING_OK};
	void *dl;
	CK_RV rv;

	if (f != NULL)
		return f;
	dl = dlopen(GW_DEFAULT_PKCS11_MODULE, RTLD_NOW);
	if (dl == NULL)
		return NULL;
	*(void **)&get = dlsym(dl, "C_GetFunctionList");
	if (get == NULL || get(&f) != CKR_OK)
		return f = NULL;
	rv = f->C_Initialize(&a);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
		return f = NULL;
	return f;
}

CK_SESSION_HANDLE
gw_softhsm_session(CK_FUNCTION_LIST *f, const char *label, const char *pin)
{
	CK_SLOT_ID slots[64];
	CK_ULONG n = 64;
	CK_SESSION_HANDLE s;

	if (f == NULL || f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
		return CK_INVALID_HANDLE;
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO ti;
		char l[33];
		size_t k = 32;
		CK_RV rv;

		if (f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		memcpy(l, ti.label, 32);
		while (k > 0 && l[k - 1] == ' ')
			k--;
		l[k] = '\0';
		if (strcmp(l, label) != 0)
			continue;
		if (f->C_OpenSession(slots[i], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
			    &s) != CKR_OK)
			return CK_INVALID_HANDLE;
		rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
		if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
			f->C_CloseSession(s);
			return CK_INVALID_HANDLE;
		}
		return s;
	}
	return CK_INVALID_HANDLE;
}
