// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Cgroup attribution (user/cgroup.c): unit, container id and pod UID from
 * paths shaped as systemd, Docker, containerd, CRI-O, Podman and kubelet
 * make them; the cgroup2 mount from mountinfo text; the id cache over a
 * directory tree made here (ids are inode numbers, as on cgroup2); --cgroup
 * targets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cgroup.h"

#define CHECK(cond, ...) do { if (!(cond)) fail_msg(__VA_ARGS__); } while (0)

#define ID1 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define ID2 "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define UID "2c4e4b4a-9a1f-4c1e-8f5e-1b2c3d4e5f60"
#define UID_ "2c4e4b4a_9a1f_4c1e_8f5e_1b2c3d4e5f60"

struct attrib_case {
	const char *path, *unit, *container_id, *pod_uid;
};

static const struct attrib_case attrib_cases[] = {
	{ "/", "", "", "" },
	{ "", "", "", "" },
	{ "/system.slice/nginx.service", "nginx.service", "", "" },
	{ "/system.slice/system-getty.slice/getty@tty1.service", "getty@tty1.service", "", "" },
	{ "/user.slice/user-1000.slice/session-3.scope", "session-3.scope", "", "" },
	{ "/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-firefox-2345.scope",
	  "app-gnome-firefox-2345.scope", "", "" },
	{ "/user.slice/user-1000.slice/user@1000.service/init.scope", "init.scope", "", "" },
	{ "/init.scope", "init.scope", "", "" },
	{ "/system.slice", "", "", "" },
	/* Docker, systemd driver and cgroupfs driver */
	{ "/system.slice/docker-" ID1 ".scope", "", ID1, "" },
	{ "/docker/" ID1, "", ID1, "" },
	{ "/system.slice/docker.service", "docker.service", "", "" },
	/* a unit inside a container (systemd in the container) is still its unit */
	{ "/system.slice/docker-" ID1 ".scope/system.slice/nginx.service", "nginx.service", ID1, "" },
	/* containerd under kubelet's systemd driver: underscores in the slice */
	{ "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_ ".slice/"
	  "cri-containerd-" ID1 ".scope", "", ID1, UID },
	{ "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID_ ".slice/"
	  "cri-containerd-" ID2 ".scope", "", ID2, UID },
	/* Guaranteed QoS pods sit right under kubepods.slice */
	{ "/kubepods.slice/kubepods-pod" UID_ ".slice/cri-containerd-" ID1 ".scope", "", ID1, UID },
	/* the pod slice itself (the sandbox's parent) */
	{ "/kubepods.slice/kubepods-pod" UID_ ".slice", "", "", UID },
	/* a static pod's UID is a 32-hex hash */
	{ "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
	  "6d1b2c3d4e5f60718293a4b5c6d7e8f9.slice/crio-" ID1 ".scope", "", ID1,
	  "6d1b2c3d4e5f60718293a4b5c6d7e8f9" },
	/* CRI-O's conmon scope is a unit, not the container */
	{ "/kubepods.slice/kubepods-pod" UID_ ".slice/crio-conmon-" ID1 ".scope",
	  "crio-conmon-" ID1 ".scope", "", UID },
	/* CRI-O's sub-cgroup of the container */
	{ "/kubepods.slice/kubepods-pod" UID_ ".slice/crio-" ID1 ".scope/container", "", ID1, UID },
	/* kubelet's cgroupfs driver */
	{ "/kubepods/burstable/pod" UID "/" ID2, "", ID2, UID },
	{ "/kubepods/pod" UID "/" ID1, "", ID1, UID },
	{ "/kubepods/besteffort/pod" UID, "", "", UID },
	/* Podman, rootful and rootless */
	{ "/machine.slice/libpod-" ID1 ".scope", "", ID1, "" },
	{ "/machine.slice/libpod-" ID1 ".scope/container", "", ID1, "" },
	{ "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" ID2 ".scope",
	  "user@1000.service", ID2, "" },
	{ "/machine.slice/libpod-conmon-" ID1 ".scope", "libpod-conmon-" ID1 ".scope", "", "" },
	/* lookalikes that are not ids */
	{ "/system.slice/docker-" "0123456789abcdef.scope", "docker-0123456789abcdef.scope", "", "" },
	{ "/docker/" "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF", "", "", "" },
	{ "/other/" ID1, "", "", "" },
	{ "/pod" UID "/" ID1, "", "", "" },	/* a pod directory only under kubepods */
	{ "/kubepods.slice/kubepods-podnot-a-uid.slice", "", "", "" },
	{ "/kubepods.slice/kubepods-burstable.slice", "", "", "" },
	{ "/process_api/3face8e0484372132e82b434ce6db679", "", "", "" },
	{ "/system.slice/.service", ".service", "", "" },
	{ "//system.slice//ssh.service/", "ssh.service", "", "" },
};

static void test_attrib_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(attrib_cases) / sizeof(attrib_cases[0]); i++) {
		const struct attrib_case *c = &attrib_cases[i];
		struct cg_attrib a;

		memset(&a, 'x', sizeof(a));
		cg_attrib_parse(c->path, &a);
		CHECK(!strcmp(a.unit, c->unit), "%s: unit '%s', want '%s'", c->path, a.unit, c->unit);
		CHECK(!strcmp(a.container_id, c->container_id), "%s: container_id '%s', want '%s'",
		      c->path, a.container_id, c->container_id);
		CHECK(!strcmp(a.pod_uid, c->pod_uid), "%s: pod_uid '%s', want '%s'", c->path,
		      a.pod_uid, c->pod_uid);
	}
}

/* A unit name too long for the field is left out, never cut. */
static void test_attrib_long_unit(void **state)
{
	char path[600] = "/system.slice/";
	struct cg_attrib a;

	(void)state;
	memset(path + strlen(path), 'a', 300);
	strcpy(path + strlen(path), ".service");
	cg_attrib_parse(path, &a);
	assert_string_equal(a.unit, "");
}

static int mount_of(const char *text, char *buf, size_t sz)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	int err;

	assert_non_null(f);
	err = cg_mount_find(f, buf, sz);
	fclose(f);
	return err;
}

static void test_mount_find(void **state)
{
	static const char hybrid[] =
		"25 1 0:23 / /sys rw,nosuid shared:7 - sysfs sysfs rw\n"
		"31 25 0:27 / /sys/fs/cgroup ro shared:9 - tmpfs tmpfs ro,mode=755\n"
		"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:10 - cgroup2 cgroup2 rw\n"
		"42 31 0:39 / /sys/fs/cgroup/memory rw shared:11 - cgroup cgroup rw,memory\n";
	static const char pure[] =
		"30 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 "
		"cgroup2 rw,nsdelegate,memory_recursiveprot\n";
	static const char escaped[] = "50 1 0:40 / /mnt/my\\040cg rw - cgroup2 none rw\n";
	static const char v1only[] = "42 31 0:39 / /sys/fs/cgroup/memory rw - cgroup cgroup rw\n";
	char buf[64];

	(void)state;
	assert_int_equal(mount_of(hybrid, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/sys/fs/cgroup/unified");
	assert_int_equal(mount_of(pure, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/sys/fs/cgroup");
	assert_int_equal(mount_of(escaped, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/mnt/my cg");
	assert_int_equal(mount_of(v1only, buf, sizeof(buf)), -ENOENT);
	assert_int_equal(mount_of("", buf, sizeof(buf)), -ENOENT);
	assert_int_equal(mount_of(hybrid, buf, 8), -ENAMETOOLONG);
}

/*
 * In a container with a cgroup namespace the runtime's mount comes first and
 * shows a subtree; the host's hierarchy bound in after it is the one taken.
 */
static void test_mount_prefers_the_whole_hierarchy(void **state)
{
	char real[256], text[1024], buf[256];
	FILE *f = fopen("/proc/self/mountinfo", "r");
	struct stat st;

	(void)state;
	assert_non_null(f);
	assert_int_equal(cg_mount_find(f, real, sizeof(real)), 0);
	fclose(f);
	assert_int_equal(stat(real, &st), 0);
	assert_int_equal(st.st_ino, 1);	/* the root cgroup */
	snprintf(text, sizeof(text),
		 "30 24 0:26 /kubepods.slice/x /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n"
		 "31 24 0:26 / %s ro - cgroup2 cgroup2 rw\n", real);
	assert_int_equal(mount_of(text, buf, sizeof(buf)), 0);
	assert_string_equal(buf, real);
}

/* A tree shaped like a cgroup2 hierarchy, in a temporary directory. */
struct tree {
	char root[64];
	char pod[384], ctr[512], svc[384];
};

static uint64_t ino(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_ino;
}

static int tree_setup(void **state)
{
	struct tree *t = calloc(1, sizeof(*t));
	char p[256];

	assert_non_null(t);
	strcpy(t->root, "/tmp/ct-cgroup-XXXXXX");
	assert_non_null(mkdtemp(t->root));
	snprintf(p, sizeof(p), "%s/kubepods.slice", t->root);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(t->pod, sizeof(t->pod), "%s/kubepods-pod" UID_ ".slice", p);
	assert_int_equal(mkdir(t->pod, 0755), 0);
	snprintf(t->ctr, sizeof(t->ctr), "%s/cri-containerd-" ID1 ".scope", t->pod);
	assert_int_equal(mkdir(t->ctr, 0755), 0);
	snprintf(p, sizeof(p), "%s/ctest.slice", t->root);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(t->svc, sizeof(t->svc), "%s/ctest-x.service", p);
	assert_int_equal(mkdir(t->svc, 0755), 0);
	*state = t;
	return 0;
}

static int tree_teardown(void **state)
{
	struct tree *t = *state;
	char p[512];

	rmdir(t->ctr);
	rmdir(t->pod);
	snprintf(p, sizeof(p), "%s/kubepods.slice", t->root);
	rmdir(p);
	rmdir(t->svc);
	snprintf(p, sizeof(p), "%s/ctest.slice", t->root);
	rmdir(p);
	rmdir(t->root);
	free(t);
	return 0;
}

static void test_cache_resolves_and_keeps(void **state)
{
	struct tree *t = *state;
	struct cg_cache *c = cg_cache_new(t->root);
	const struct cg_info *i;
	uint64_t ctr = ino(t->ctr), svc = ino(t->svc);

	assert_non_null(c);
	i = cg_cache_get(c, ctr);
	assert_int_equal(i->state, CG_FOUND);
	assert_string_equal(i->path, "/kubepods.slice/kubepods-pod" UID_ ".slice/cri-containerd-"
			    ID1 ".scope");
	assert_string_equal(i->a.container_id, ID1);
	assert_string_equal(i->a.pod_uid, UID);
	i = cg_cache_get(c, svc);
	assert_int_equal(i->state, CG_FOUND);
	assert_string_equal(i->path, "/ctest.slice/ctest-x.service");
	assert_string_equal(i->a.unit, "ctest-x.service");
	i = cg_cache_get(c, ino(t->root));
	assert_int_equal(i->state, CG_FOUND);
	assert_string_equal(i->path, "/");
	/* kept: still the same after the directory went */
	assert_int_equal(rmdir(t->svc), 0);
	i = cg_cache_get(c, svc);
	assert_int_equal(i->state, CG_FOUND);
	assert_string_equal(i->path, "/ctest.slice/ctest-x.service");
	assert_int_equal(cg_cache_get(c, 0)->state, CG_UNKNOWN);
	cg_cache_free(c);
}

static void test_cache_removed_before_resolved(void **state)
{
	struct tree *t = *state;
	struct cg_cache *c = cg_cache_new(t->root);
	uint64_t ctr = ino(t->ctr);
	const struct cg_info *i;

	assert_non_null(c);
	assert_int_equal(rmdir(t->ctr), 0);
	i = cg_cache_get(c, ctr);
	assert_int_equal(i->state, CG_REMOVED);
	assert_null(i->path);
	/* a sibling still resolves */
	i = cg_cache_get(c, ino(t->pod));
	assert_int_equal(i->state, CG_FOUND);
	assert_string_equal(i->a.pod_uid, UID);
	assert_string_equal(i->a.container_id, "");
	cg_cache_free(c);
}

/* Many ids: the table empties itself when full and goes on answering. */
static void test_cache_many_ids(void **state)
{
	struct tree *t = *state;
	struct cg_cache *c = cg_cache_new(t->root);
	uint64_t svc = ino(t->svc);

	(void)state;
	assert_non_null(c);
	for (uint64_t id = 1; id < 5000; id++)
		if (id != svc && id != ino(t->root))
			(void)cg_cache_get(c, id + 1000000000ULL);
	assert_string_equal(cg_cache_get(c, svc)->path, "/ctest.slice/ctest-x.service");
	cg_cache_free(c);
}

static void test_cache_without_mount(void **state)
{
	struct cg_cache *c = cg_cache_new(NULL);

	(void)state;
	assert_non_null(c);
	assert_int_equal(cg_cache_get(c, 12345)->state, CG_UNKNOWN);
	cg_cache_free(c);
	errno = 0;
	assert_null(cg_cache_new("/nonexistent/cgroup2"));
	assert_int_equal(errno, ENOENT);
}

static void test_target(void **state)
{
	struct tree *t = *state;
	char err[256];
	uint64_t id;
	uint32_t level;

	assert_int_equal(cg_target(t->root, "kubepods.slice", &id, &level, err, sizeof(err)), 0);
	assert_int_equal(level, 1);
	assert_int_equal(cg_target(t->root, "/ctest.slice/ctest-x.service", &id, &level, err,
				   sizeof(err)), 0);
	assert_int_equal(id, ino(t->svc));
	assert_int_equal(level, 2);
	assert_int_equal(cg_target(t->root, t->ctr, &id, &level, err, sizeof(err)), 0);
	assert_int_equal(id, ino(t->ctr));
	assert_int_equal(level, 3);
	assert_int_equal(cg_target(t->root, "/", &id, &level, err, sizeof(err)), 0);
	assert_int_equal(id, ino(t->root));
	assert_int_equal(level, 0);
	assert_int_equal(cg_target(t->root, t->root, &id, &level, err, sizeof(err)), 0);
	assert_int_equal(level, 0);
	assert_int_equal(cg_target(t->root, "./ctest.slice/", &id, &level, err, sizeof(err)), 0);
	assert_int_equal(level, 1);
	assert_int_equal(cg_target(t->root, "nope.slice", &id, &level, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "nope.slice"), "message names the path: %s", err);
	assert_int_equal(cg_target(t->root, "ctest.slice/../kubepods.slice", &id, &level, err,
				   sizeof(err)), -EINVAL);
	assert_int_equal(cg_target(NULL, "x", &id, &level, err, sizeof(err)), -ENOENT);
}

/* This process's own cgroup, as the kernel names it; a pid that is gone. */
static void test_of_pid(void **state)
{
	char buf[4096], small[1];
	FILE *f = fopen("/proc/self/cgroup", "r");
	char line[4200] = "";

	(void)state;
	assert_non_null(f);
	while (fgets(line, sizeof(line), f) && strncmp(line, "0::", 3))
		;
	fclose(f);
	line[strcspn(line, "\n")] = '\0';
	assert_int_equal(cg_of_pid(getpid(), buf, sizeof(buf)), 0);
	assert_string_equal(buf, line + 3);
	assert_int_equal(buf[0], '/');
	assert_int_equal(cg_of_pid(getpid(), small, sizeof(small)), -ENAMETOOLONG);
	assert_int_equal(cg_of_pid(0x7ffffff0, buf, sizeof(buf)), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_attrib_parse),
		cmocka_unit_test(test_attrib_long_unit),
		cmocka_unit_test(test_mount_find),
		cmocka_unit_test(test_mount_prefers_the_whole_hierarchy),
		cmocka_unit_test_setup_teardown(test_cache_resolves_and_keeps, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_cache_removed_before_resolved, tree_setup,
						tree_teardown),
		cmocka_unit_test_setup_teardown(test_cache_many_ids, tree_setup, tree_teardown),
		cmocka_unit_test(test_cache_without_mount),
		cmocka_unit_test(test_of_pid),
		cmocka_unit_test_setup_teardown(test_target, tree_setup, tree_teardown),
	};

	return cmocka_run_group_tests_name("cgroup", tests, NULL, NULL);
}
