// bin/miglet of miglet's self-contained bundle (hack/images/bundle.sh): a static program that
// runs the real agent (libexec/miglet) with the bundle's own loader and shared libraries
// (lib/), so the bundle runs on any x86_64 Linux whatever C library it has, or none: in a
// runner pod (copied there by `miglet --install`), from a user's own runner image
// (`COPY --from=`), or unpacked on a VM. Built with `cc -static`; it needs nothing at run time.
//
// It finds the bundle from /proc/self/exe (or from argv[0] where /proc is not mounted), exports
// MIGLET_BUNDLE_DIR for `miglet --install`, and execs
//   lib/ld.so --library-path lib --argv0 ARGV0 libexec/miglet ARGS...
// The loader's --library-path is not LD_LIBRARY_PATH: programs miglet starts (the runner) get
// the environment they would have had, and the system's own libraries.
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// The bundle's root: two levels up from bin/miglet.
static int bundle_root(const char* argv0, char* out, size_t size) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    self[n] = '\0';
  } else if (strchr(argv0, '/') == NULL || realpath(argv0, self) == NULL) {
    return -1;
  }
  for (int up = 0; up < 2; up++) {
    char* slash = strrchr(self, '/');
    if (slash == NULL) return -1;
    *slash = '\0';
  }
  if (self[0] == '\0') strcpy(self, "/");
  if (strlen(self) + 1 > size) return -1;
  strcpy(out, self);
  return 0;
}

int main(int argc, char** argv) {
  char root[PATH_MAX];
  if (bundle_root(argv[0], root, sizeof root) != 0) {
    fprintf(stderr, "miglet: cannot find the bundle this launcher is in (/proc/self/exe: %s)\n",
            strerror(errno));
    return 127;
  }
  char loader[PATH_MAX + 16], libs[PATH_MAX + 16], agent[PATH_MAX + 32];
  snprintf(loader, sizeof loader, "%s/lib/ld.so", root);
  snprintf(libs, sizeof libs, "%s/lib", root);
  snprintf(agent, sizeof agent, "%s/libexec/miglet", root);
  setenv("MIGLET_BUNDLE_DIR", root, 1);

  char** args = calloc((size_t)argc + 8, sizeof(char*));
  if (args == NULL) return 127;
  int i = 0;
  args[i++] = loader;
  args[i++] = "--library-path";
  args[i++] = libs;
  args[i++] = "--argv0";
  args[i++] = argv[0];
  args[i++] = agent;
  for (int a = 1; a < argc; a++) args[i++] = argv[a];
  args[i] = NULL;
  execv(loader, args);
  fprintf(stderr, "miglet: cannot run %s: %s\n", loader, strerror(errno));
  return 127;
}
