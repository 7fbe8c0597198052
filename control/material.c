/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * material.c - certificate material read once (struct gw_material in
 * config.h): the loader reads each PEM file here, and everything after it
 * (trust build, ticket fingerprint, expiry metrics) uses these bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>

#include "config.h"
#include "gw_err.h"

int
gw_material_read(const char *path, size_t max, struct gw_material *out)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t len = 0;
	unsigned int dlen = 0;
	int fd, rc;

	GW_ENSURE(path != NULL && out != NULL, -EINVAL);
	/* O_NONBLOCK: a FIFO put where a PEM file belongs must not hang the load */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return gw_err_setf(-errno, GW_HERE, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0) {
		rc = gw_err_setf(-errno, GW_HERE, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = gw_err_setf(-EINVAL, GW_HERE, "%s: not a regular file", path);
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		rc = gw_err_setf(-EFBIG, GW_HERE, "%s: %lld bytes is too large (at most %zu)", path,
			(long long)st.st_size, max);
		goto out;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		rc = gw_err_set(-ENOMEM, GW_HERE);
		goto out;
	}
	/* the size from fstat is a hint: a file that grows meanwhile is cut at it */
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = gw_err_setf(-errno, GW_HERE, "%s: read: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len == 0) {
		rc = gw_err_setf(-ENODATA, GW_HERE, "%s: the file is empty", path);
		goto out;
	}
	buf[len] = 0;
	if (EVP_Digest(buf, len, out->sha256, &dlen, EVP_sha256(), NULL) != 1 || dlen != 32) {
		rc = gw_err_setf(-GW_E_TLS, GW_HERE, "%s: cannot compute SHA-256", path);
		gw_err_add_ossl();
		goto out;
	}
	if ((out->path = strdup(path)) == NULL) {
		rc = gw_err_set(-ENOMEM, GW_HERE);
		goto out;
	}
	out->bytes = buf;
	out->len = len;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	close(fd);
	return rc;
}

void
gw_material_fini(struct gw_material *m)
{
	if (m == NULL)
		return;
	free(m->path);
	free(m->bytes);
	memset(m, 0, sizeof(*m));
}

int
gw_material_get(const struct gw_material *loaded, const char *path, const char *what,
	struct gw_material *own, const struct gw_material **out)
{
	int rc;

	GW_ENSURE(path != NULL && what != NULL && own != NULL && out != NULL, -EINVAL);
	if (loaded != NULL) {
		if (loaded->bytes == NULL)
			return gw_err_setf(-GW_E_CONFIG, GW_HERE,
				"%s '%s': the config holds no bytes for it", what, path);
		*out = loaded;
		return 0;
	}
	rc = gw_material_read(path, GW_MATERIAL_MAX, own);
	if (rc < 0)
		return gw_err_setf(-GW_E_CONFIG, GW_HERE, "%s '%s': cannot open: %s", what, path,
			rc > -GW_E_BASE ? strerror(-rc) : "cannot hash it");
	*out = own;
	return 0;
}

BIO *
gw_material_bio(const struct gw_material *m)
{
	if (m == NULL || m->bytes == NULL || m->len > INT_MAX)
		return NULL;
	return BIO_new_mem_buf(m->bytes, (int)m->len);
}
