#!/usr/bin/env -S MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=65536 MALLOC_TRIM_THRESHOLD_=1048576 node --max-semi-space-size=8
/**
 * The `spotify-batch` command. It checks the Node version before importing anything: the
 * dependencies (undici first) fail on older Nodes with stack traces that name none of this.
 *
 * The shebang caps V8's young generation at 8 MiB per semi-space. Left to itself V8 sizes it
 * from the machine: up to 64 MiB on a large one (a peak that grows with how long the run is
 * fast), and 1 MiB inside a 128 MiB container (a scavenge every few hundred albums: the run
 * takes about twice as long). The MALLOC_ variables keep glibc's native heap from holding freed
 * memory (a million albums to /dev/null in a 128 MiB cgroup: 96–99 MiB peak without them, 83–84
 * with them): two arenas instead of one per thread, blocks of 64 KiB and more (socket reads, our
 * 64 KiB chunks) mapped and unmapped rather than kept in the heap, and the heap's free top
 * returned past 1 MiB. musl and other libcs ignore them. bench/README.md, "Memory in a
 * container", has the measurements.
 */
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 19)) {
  process.stderr.write(
    `spotify-batch: error: Node ${process.versions.node} is too old: it needs Node 22.19 or newer (22 LTS, or 24)\n`,
  );
  process.exit(2);
}

// V8's compiled code for this tool's modules, kept on disk (the OS temp directory) by Node:
// start-up compiles nothing twice. It does nothing where the directory is not writable.
(await import('node:module')).enableCompileCache?.();
const { main } = await import('../src/cli/main.ts');
await main();
