import { readFileSync } from 'node:fs';

/**
 * This package's version, from the package.json above this file (src/core/ or dist/src/core/):
 * what `--version` prints and the manifest records.
 */
export function packageVersion(): string {
  for (let dir = new URL('.', import.meta.url); ; dir = new URL('..', dir)) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'spotify-batch' && pkg.version) return pkg.version;
    } catch {}
    if (dir.pathname === '/') return 'unknown';
  }
}
