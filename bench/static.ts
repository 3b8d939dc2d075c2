/**
 * A static Spotify source for benchmarks: nginx (Debian's `nginx-light`, installed here when
 * missing) in its own process serves every new-releases page from files rendered ahead by the
 * emulator, and a fixed token. The source then costs almost nothing, so a run measures the
 * client, not the server (the project's own Node emulator shares the 2 cores with it).
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { startEmulator } from '../src/emulator/server.ts';

const PAGE = 50;

function which(command: string): string | undefined {
  for (const dir of ['/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin', '/sbin']) {
    try {
      execFileSync('test', ['-x', join(dir, command)]);
      return join(dir, command);
    } catch {}
  }
  return undefined;
}

/**
 * The nginx binary, installed with apt-get when missing (the bench runs as root on a Debian
 * machine). Returns undefined, with the reason, where that is not possible.
 */
export function ensureNginx(): { nginx?: string; reason?: string } {
  const found = which('nginx');
  if (found) return { nginx: found };
  if (process.getuid?.() !== 0 || !which('apt-get')) {
    return { reason: 'nginx is not installed and apt-get as root is not available' };
  }
  process.stderr.write('installing nginx-light (apt-get) for the static floor…\n');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env });
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'nginx-light'], {
      stdio: 'ignore',
      env,
    });
  } catch (error) {
    return { reason: `apt-get install nginx-light failed: ${(error as Error).message}` };
  }
  const installed = which('nginx');
  return installed ? { nginx: installed } : { reason: 'nginx-light installed no nginx binary' };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Environment that points the CLI at a Spotify source on `url` (nginx here, or the emulator). */
export const spotifyEnv = (url: string): Record<string, string> => ({
  SPOTIFY_API_URL: url,
  SPOTIFY_ACCOUNTS_URL: url,
  SPOTIFY_CLIENT_ID: 'emulator-id',
  SPOTIFY_CLIENT_SECRET: 'emulator-secret',
});

export interface StaticSource {
  url: string;
  env: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * Renders `albums` albums as new-releases pages (limit 50) into `dir` and serves them with
 * nginx on loopback: one worker process, no access log, keep-alive without a request cap.
 */
export async function startStaticSource(
  nginx: string,
  dir: string,
  albums: number,
): Promise<StaticSource> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const pages = join(dir, 'pages');
  await mkdir(pages, { recursive: true });
  // As root, nginx's worker would run as www-data, which cannot read a mkdtemp (0700) directory:
  // the config below keeps it root; outside root the directory must be readable anyway.
  await chmod(dir, 0o755);
  const emulator = await startEmulator({ albums });
  try {
    for (let offset = 0; offset < Math.max(albums, 1); offset += PAGE) {
      const res = await fetch(
        `${emulator.url}/v1/browse/new-releases?limit=${PAGE}&offset=${offset}`,
        {
          headers: { authorization: `Bearer ${await token(emulator.url)}` },
        },
      );
      // The page's own links (next, href) point at nginx, as the emulator's point at itself.
      const body = (await res.text()).replaceAll(emulator.url, url);
      await writeFile(join(pages, `${offset}.json`), body);
    }
  } finally {
    await emulator.stop();
  }
  const conf = join(dir, 'nginx.conf');
  const tokenBody = JSON.stringify({
    access_token: 'static',
    token_type: 'Bearer',
    expires_in: 3600,
  });
  await writeFile(
    conf,
    `daemon off;
${process.getuid?.() === 0 ? 'user root;\n' : ''}worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log stderr error;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${join(dir, 'tmp-body')};
  proxy_temp_path ${join(dir, 'tmp-proxy')};
  fastcgi_temp_path ${join(dir, 'tmp-fastcgi')};
  uwsgi_temp_path ${join(dir, 'tmp-uwsgi')};
  scgi_temp_path ${join(dir, 'tmp-scgi')};
  sendfile on;
  tcp_nodelay on;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  server {
    listen 127.0.0.1:${port};
    root ${dir};
    location = /api/token {
      default_type application/json;
      return 200 '${tokenBody}';
    }
    location = /v1/browse/new-releases {
      default_type application/json;
      try_files /pages/$arg_offset.json =404;
    }
  }
}
`,
  );
  const child = spawn(nginx, ['-c', conf, '-p', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Ready when the token answers.
  for (let i = 0; ; i++) {
    try {
      const res = await fetch(`${url}/api/token`, { method: 'POST' });
      if (res.ok) break;
    } catch {}
    if (i > 100 || child.exitCode !== null) throw new Error('nginx did not start');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    url,
    env: spotifyEnv(url),
    stop: async () => {
      child.kill('SIGQUIT');
      await exited;
    },
  };
}

const tokens = new Map<string, string>();
async function token(base: string): Promise<string> {
  let t = tokens.get(base);
  if (t === undefined) {
    const res = await fetch(`${base}/api/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from('emulator-id:emulator-secret').toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'grant_type=client_credentials',
    });
    t = ((await res.json()) as { access_token: string }).access_token;
    tokens.set(base, t);
  }
  return t;
}
