/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * login_check.c - does this PIN open that token? Asked in a process of its
 * own (see gw_hsm_login_check in hsm.h).
 *
 * PKCS#11 keeps the login state per application (per C_Initialize, so per
 * process): a process already logged in to a token hears "already logged
 * in" whatever PIN it offers, and logging out first would log out every
 * worker's signing session. A reload that must know whether a new PIN
 * source is right therefore asks a fresh process: this program itself,
 * re-executed from /proc/self/exe with GW_HSM_LOGIN_CHECK_ARG (posix_spawn:
 * no fork of a multithreaded DPDK process, no lock inherited from a worker
 * that was signing). The PIN goes over a pipe, never argv or environment;
 * the child answers one line on another pipe: "0" or "<code> <message>".
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "hsm_internal.h"

extern char **environ;

#define CHECK_TIMEOUT_MS 30000

/* The child: PIN on stdin, one answer line on stdout. */
static int
child_check(const char *module, const char *token)
{
	char pin[GW_HSM_PIN_MAX];
	struct gw_p11_mod *m = NULL;
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	CK_SLOT_ID slot;
	size_t n = 0;
	ssize_t r;
	int rc;
	CK_RV rv;

	while (n < sizeof(pin) - 1 && (r = read(0, pin + n, sizeof(pin) - 1 - n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		n += (size_t)r;
	}
	pin[n] = '\0';
	rc = gw_p11_mod_get(module, &m);
	if (rc == 0)
		rc = gw_p11_find_token(m, token, &slot);
	if (rc == 0) {
		rv = m->f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
		if (rv != CKR_OK)
			rc = gw_err_setf(-GW_E_HSM, GW_HERE,
				"cannot open a session on token '%s': %s", token,
				gw_p11_ckr_name(rv));
	}
	if (rc == 0)
		rc = gw_p11_login(m, s, token, pin);
	OPENSSL_cleanse(pin, sizeof(pin));
	if (rc == 0) {
		/* the PIN was accepted; this process ends its login by exiting */
		(void)m->f->C_Logout(s);
		printf("0\n");
	} else {
		printf("%d %s\n", rc, gw_err_msg());
	}
	if (s != CK_INVALID_HANDLE)
		(void)m->f->C_CloseSession(s); /* the process exits next */
	if (m != NULL)
		(void)m->f->C_Finalize(NULL);
	fflush(stdout);
	return rc == 0 ? 0 : 1;
}

int
gw_hsm_login_check_main(int argc, char **argv)
{
	if (argc != 4 || strcmp(argv[1], GW_HSM_LOGIN_CHECK_ARG) != 0)
		return -1;
	return child_check(argv[2], argv[3]);
}

/* Read the child's answer until EOF, within the time left. */
static int
read_answer(int fd, char *buf, size_t cap)
{
	struct timespec t0, t1;
	size_t n = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		long spent;
		ssize_t r;

		clock_gettime(CLOCK_MONOTONIC, &t1);
		spent = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
		if (spent >= CHECK_TIMEOUT_MS)
			return -ETIMEDOUT;
		if (poll(&p, 1, (int)(CHECK_TIMEOUT_MS - spent)) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		r = read(fd, buf + n, cap - 1 - n);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0 || (n += (size_t)r) == cap - 1)
			break;
	}
	buf[n] = '\0';
	return 0;
}

static int
check_token(const char *module, const char *token, const char *pin)
{
	char exe[PATH_MAX], ans[GW_ERR_MSG_MAX + 32];
	char *argv[] = {exe, (char *)GW_HSM_LOGIN_CHECK_ARG, (char *)module, (char *)token, NULL};
	int in[2] = {-1, -1}, out[2] = {-1, -1}, status = 0, rc;
	posix_spawn_file_actions_t fa;
	ssize_t len;
	pid_t pid;
	char *end;
	long code;

	len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (len < 0)
		return gw_err_setf(-GW_E_HSM, GW_HERE,
			"PIN check for token '%s': cannot find this program: %s", token,
			strerror(errno));
	exe[len] = '\0';
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
		rc = gw_err_setf(-GW_E_HSM, GW_HERE, "PIN check: pipe: %s", strerror(errno));
		goto out;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	rc = posix_spawn(&pid, exe, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		rc = gw_err_setf(-GW_E_HSM, GW_HERE, "PIN check for token '%s': cannot run %s: %s",
			token, exe, strerror(rc));
		goto out;
	}
	close(in[0]);
	close(out[1]);
	in[0] = out[1] = -1;
	/*
	 * A PIN is shorter than a pipe's buffer: this write does not block. A
	 * child that died first would raise SIGPIPE: held back here and
	 * consumed, the answer (none) tells what happened.
	 */
	{
		sigset_t pipe_set, old;
		struct timespec zero = {0};

		sigemptyset(&pipe_set);
		sigaddset(&pipe_set, SIGPIPE);
		pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
		if (write(in[1], pin, strlen(pin)) < 0 && errno == EPIPE)
			(void)sigtimedwait(&pipe_set, NULL, &zero);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	close(in[1]);
	in[1] = -1;
	rc = read_answer(out[0], ans, sizeof(ans));
	if (rc == -ETIMEDOUT)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (rc < 0) {
		rc = gw_err_setf(-GW_E_HSM, GW_HERE, "PIN check for token '%s': %s", token,
			rc == -ETIMEDOUT ? "no answer within 30 s" : strerror(-rc));
		goto out;
	}
	ans[strcspn(ans, "\n")] = '\0';
	code = strtol(ans, &end, 10);
	if (end == ans || (code == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))) {
		rc = gw_err_setf(-GW_E_HSM, GW_HERE,
			"PIN check for token '%s': the checking process failed (status %d)", token,
			status);
		goto out;
	}
	if (code < 0) {
		rc = gw_err_setf((int)code, GW_HERE, "%s", *end == ' ' ? end + 1 : end);
		goto out;
	}
	rc = 0;
out:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
	}
	return rc;
}

int
gw_hsm_login_check(const struct gw_hsm_params *p, const char *const *tokens, unsigned n_tokens)
{
	char pin[GW_HSM_PIN_MAX];
	int rc = 0;

	GW_ENSURE(p != NULL && (tokens != NULL || n_tokens == 0), -EINVAL);
	if (p->pin_file != NULL && p->pin_env != NULL)
		return gw_err_setf(
			-EINVAL, GW_HERE, "give the PIN as a file or a variable, not both");
	if (p->pin_file == NULL && p->pin_env == NULL)
		return 0; /* no login: nothing to check */
	GW_GUARD(gw_hsm_pin_read(p->pin_file, p->pin_env, pin));
	for (unsigned i = 0; i < n_tokens && rc == 0; i++)
		rc = check_token(p->module ? p->module : GW_DEFAULT_PKCS11_MODULE, tokens[i], pin);
	OPENSSL_cleanse(pin, sizeof(pin));
	return rc;
}
