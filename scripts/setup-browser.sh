#!/usr/bin/env bash
# Installs what the web page's browser test (serving/tests/browser.rs) needs: Debian's
# Chromium at /usr/bin/chromium, and playwright-core in serving/web/node_modules (from the
# lock file). Playwright's own browser download is never used: it would fetch a build from
# outside the package registries. Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
apt_install() {
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
if [ "${#need[@]}" -gt 0 ]; then
  echo "setup-browser: installing ${need[*]}"
  # Refresh the package lists only when they do not know a package yet.
  for pkg in "${need[@]}"; do
    if ! apt-cache show "$pkg" >/dev/null 2>&1; then
      $SUDO apt-get update -qq
      break
    fi
  done
  apt_install "${need[@]}"
fi
/usr/bin/chromium --version 2>/dev/null  # (its Debian wrapper warns about /dev/shm on stderr)

# playwright-core needs node 20 or later (Debian 12's own nodejs is 18).
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "setup-browser: node $(node --version) is too old for playwright-core (needs 20+)" >&2
  exit 1
fi

# npm ci installs exactly the lock file; skip it when that version is in place already.
web=serving/web
want=$(node -p "require('./$web/package-lock.json').packages['node_modules/playwright-core'].version")
have=$(node -p "try { require('./$web/node_modules/playwright-core/package.json').version } catch { '' }")
if [ "$want" != "$have" ]; then
  echo "setup-browser: npm ci in $web (playwright-core $want)"
  (cd "$web" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
fi
echo "setup-browser: playwright-core $want in $web/node_modules"
