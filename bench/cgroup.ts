/**
 * Runs a measured process inside its own memory cgroup, as a container would: cgroup v1 (the
 * memory controller at /sys/fs/cgroup/memory) or v2 (a unified hierarchy with the memory
 * controller), as root. The group is made beside nothing else (a child of the bench's own group,
 * so it nests under whatever limit the bench itself has), given a limit or none, the process is
 * moved in before it execs node, and the group's peak charge and OOM kills are read after it
 * exits. Where neither is usable, {@link detectCgroups} says why and the bench reports "not
 * measured here".
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface CgroupRun {
  /** Exit code (null when killed by a signal). */
  code: number | null;
  signal: NodeJS.Signals | null;
  seconds: number;
  /** The group's peak charge (anonymous memory, page cache it caused, kernel memory), bytes. */
  peakBytes: number;
  /** The kernel's OOM killer killed a process of the group. */
  oomKilled: boolean;
  stderr: string;
}

export interface Cgroups {
  version: 1 | 2;
  /** The directory new groups are made in. */
  parent: string;
  run(
    limitBytes: number | undefined,
    command: string,
    args: string[],
    env: NodeJS.ProcessEnv,
  ): Promise<CgroupRun>;
}

let counter = 0;

/** The memory cgroup hierarchy this machine offers to root, or why there is none. */
export function detectCgroups(): { cgroups?: Cgroups; reason?: string } {
  if (process.platform !== 'linux') return { reason: 'not Linux' };
  if (process.getuid?.() !== 0) return { reason: 'not root (cgroups need root here)' };
  let self: string[] = [];
  try {
    self = readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n');
  } catch {
    return { reason: 'no /proc/self/cgroup' };
  }
  const v1 = self.find((line) => line.split(':')[1]?.split(',').includes('memory'));
  if (v1 && existsSync('/sys/fs/cgroup/memory/memory.limit_in_bytes')) {
    const path = v1.split(':')[2] ?? '/';
    const parent = join('/sys/fs/cgroup/memory', path);
    return { cgroups: make(1, existsSync(parent) ? parent : '/sys/fs/cgroup/memory') };
  }
  for (const mount of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']) {
    const controllers = join(mount, 'cgroup.controllers');
    if (!existsSync(controllers) || !readFileSync(controllers, 'utf8').includes('memory')) continue;
    // A v2 group with processes cannot have children with controllers: use the root's.
    const parent = mount;
    const subtree = join(parent, 'cgroup.subtree_control');
    try {
      if (!readFileSync(subtree, 'utf8').includes('memory')) {
        writeFileSync(subtree, '+memory');
      }
    } catch {
      return { reason: `cgroup v2 at ${mount} without the memory controller for children` };
    }
    return { cgroups: make(2, parent) };
  }
  return { reason: 'no cgroup memory controller (neither v1 nor v2) on this machine' };
}

function make(version: 1 | 2, parent: string): Cgroups {
  return {
    version,
    parent,
    async run(limitBytes, command, args, env) {
      const dir = join(parent, `spotify-batch-bench-${process.pid}-${counter++}`);
      await mkdir(dir);
      try {
        if (version === 1) {
          await writeFile(join(dir, 'memory.limit_in_bytes'), String(limitBytes ?? -1));
          // No swap on a container's limit: memory+swap capped at the same value, where it exists.
          if (limitBytes !== undefined && existsSync(join(dir, 'memory.memsw.limit_in_bytes'))) {
            await writeFile(join(dir, 'memory.memsw.limit_in_bytes'), String(limitBytes)).catch(
              () => {},
            );
          }
        } else {
          await writeFile(
            join(dir, 'memory.max'),
            limitBytes === undefined ? 'max' : String(limitBytes),
          );
          await writeFile(join(dir, 'memory.swap.max'), '0').catch(() => {});
        }
        const start = performance.now();
        // The shell moves itself into the group, then becomes node: nothing of the bench's
        // own memory is charged to it, and all of the measured process's is.
        const child = spawn(
          '/bin/sh',
          ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', dir, command, ...args],
          { env, stdio: ['ignore', 'ignore', 'pipe'] },
        );
        let stderr = '';
        child.stderr.setEncoding('utf8').on('data', (d: string) => {
          stderr += d;
        });
        const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>(
          (resolve) => child.once('close', (c, s) => resolve([c, s])),
        );
        const seconds = (performance.now() - start) / 1000;
        const read = async (file: string) => (await readFile(join(dir, file), 'utf8')).trim();
        let peakBytes: number;
        let oomKilled: boolean;
        if (version === 1) {
          peakBytes = Number(await read('memory.max_usage_in_bytes'));
          const oom = /oom_kill (\d+)/.exec(await read('memory.oom_control'));
          oomKilled = oom ? Number(oom[1]) > 0 : signal === 'SIGKILL';
        } else {
          peakBytes = Number(await read('memory.peak').catch(() => 'NaN'));
          const oom = /oom_kill (\d+)/.exec(await read('memory.events'));
          oomKilled = oom ? Number(oom[1]) > 0 : signal === 'SIGKILL';
        }
        return { code, signal, seconds, peakBytes, oomKilled, stderr };
      } finally {
        // Page cache the run left is moved to the parent; the empty group can go.
        for (let i = 0; i < 20; i++) {
          try {
            await rmdir(dir);
            break;
          } catch {
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
        }
      }
    },
  };
}
