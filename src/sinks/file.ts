import { randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import {
  type FileHandle,
  lstat,
  mkdir,
  open,
  realpath,
  rename,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { fileError, SpotifyBatchError } from '../core/errors.ts';
import type { SinkResult, StagedSink } from '../core/sink.ts';

/** `dir` must be a directory: missing, or a file, is a usage error naming the flag. */
async function assertDirectory(dir: string, flag: string, target: string): Promise<void> {
  const info = await stat(dir).catch(() => undefined);
  if (info?.isDirectory()) return;
  throw new SpotifyBatchError(
    'ERR_CONFIG',
    `option ${flag}: ${info === undefined ? `directory ${dir} does not exist` : `${dir} is not a directory`}`,
    { context: { path: target } },
  );
}

/** What is at `path` now (undefined: nothing); a directory there is a usage error. */
async function fileTarget(path: string, flag: string): Promise<Stats | undefined> {
  const info = await stat(path).catch(() => undefined);
  if (info?.isDirectory()) {
    throw new SpotifyBatchError(
      'ERR_CONFIG',
      `option ${flag}: ${path} is a directory, expected a file path`,
      { context: { path } },
    );
  }
  return info;
}

/**
 * Devices that discard what they are given, or refuse it all (/dev/full): a byte written to one
 * of them is a harmless probe. Any other device (a terminal, a disk) is never written to here.
 */
const BIT_BUCKETS = ['/dev/null', '/dev/zero', '/dev/full'];

/**
 * Proves a file output writable without leaving anything: a file is created and removed where
 * the run would stage it (root passes access(2) checks that /proc or a read-only mount then
 * refuse); a device the run writes in place is opened for writing, and a bit bucket takes a
 * byte (so /dev/full fails here, as the run would). A named pipe is not opened: that would wait
 * for its reader. `createDirs`: the nearest existing directory is probed instead.
 */
export async function probeFile(
  path: string,
  { flag, createDirs }: { flag: string; createDirs: boolean },
): Promise<void> {
  let dir = dirname(path);
  if (createDirs) {
    while (!(await stat(dir).catch(() => undefined)) && dirname(dir) !== dir) dir = dirname(dir);
  }
  await assertDirectory(dir, flag, path);
  const info = await fileTarget(path, flag);
  if (info?.isCharacterDevice() || info?.isBlockDevice()) {
    let handle: FileHandle | undefined;
    try {
      handle = await open(path, constants.O_WRONLY);
      const bucket = await Promise.all(
        BIT_BUCKETS.map((device) => stat(device).catch(() => undefined)),
      );
      if (bucket.some((device) => device?.rdev === info.rdev)) await handle.write(Buffer.of(10));
    } catch (cause) {
      throw fileError(cause, path, 'write');
    } finally {
      await handle?.close();
    }
    return;
  }
  if (info !== undefined && !info.isFile()) return; // a named pipe or socket: written in place
  const probe = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.probe`);
  try {
    await writeFile(probe, '', { flag: 'wx' });
  } catch (cause) {
    // The directory exists (checked above): ENOENT means it takes no new files (/proc, /sys).
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new SpotifyBatchError('ERR_SINK', `cannot write ${path}: ${dir} takes no new files`, {
        cause,
        context: { path },
      });
    }
    throw fileError(cause, path, 'write');
  }
  await rm(probe, { force: true });
}

/** A file's version for conditional writes (size and modification time), or null if absent. */
export async function fileVersion(path: string): Promise<string | null> {
  const info = await stat(path).catch(() => undefined);
  return info === undefined ? null : `${info.size}:${info.mtimeMs}`;
}

/**
 * Bytes into an open file, every failure reported with the target's path (a write(2) error such
 * as ENOSPC carries no path of its own). Ending the stream flushes the file to the disk, so a
 * published file survives a crash right after the rename.
 */
class FileWritable extends Writable {
  readonly #handle: FileHandle;
  readonly #target: string;
  readonly #sync: boolean;

  constructor(handle: FileHandle, target: string, sync: boolean) {
    super({ highWaterMark: 64 * 1024 });
    this.#handle = handle;
    this.#target = target;
    this.#sync = sync;
  }

  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    this.#handle.writev(chunks.map((c) => c.chunk)).then(
      () => callback(),
      (cause: unknown) => callback(fileError(cause, this.#target, 'write')),
    );
  }

  override _final(callback: (error?: Error | null) => void): void {
    const done = this.#sync ? this.#handle.sync() : Promise.resolve();
    done
      .then(() => this.#handle.close())
      .then(
        () => callback(),
        (cause: unknown) => callback(fileError(cause, this.#target, 'write')),
      );
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#handle.close().then(
      () => callback(error),
      () => callback(error), // already closed by _final
    );
  }
}

/**
 * A file output, staged as a temporary file beside its target (`.name.<random>.partial`, same
 * directory so the rename is atomic) and renamed into place when the run publishes. Discarding
 * deletes the temporary file: the target is never half-written and never touched by a failed run.
 *
 * A target that exists and is not a regular file (/dev/null, /dev/full, a named pipe,
 * /dev/stdout) is written in place and cannot be staged: renaming over a device would replace it.
 */
export class FileSink implements StagedSink {
  readonly location: string;
  readonly writable: Writable;
  readonly staged: Promise<void>;
  /** The temporary file, or undefined when writing in place. */
  readonly #temp: string | undefined;
  /** A conditional write: the version the target must still have (null: still absent). */
  readonly #expect: string | null | undefined;
  #published = false;

  private constructor(
    target: string,
    temp: string | undefined,
    writable: Writable,
    expect: string | null | undefined,
  ) {
    this.location = target;
    this.#temp = temp;
    this.#expect = expect;
    this.writable = writable;
    this.staged = new Promise<void>((resolve, reject) => {
      writable.once('finish', resolve);
      writable.once('error', reject);
    });
    this.staged.catch(() => {}); // observed by the pipeline; the commit owner awaits it later
  }

  /**
   * Opens the temporary file now, so a missing directory or a permission problem fails the run
   * before any fetching. `createdDirs` (templated, partitioned outputs) makes missing parent
   * directories and answers the topmost one it made (the commit owner removes it on discard).
   */
  static async open(
    target: string,
    {
      createDirs = false,
      flag = '--out',
      expect,
    }: { createDirs?: boolean; flag?: string; expect?: string | null | undefined } = {},
  ): Promise<{ sink: FileSink; createdDir: string | undefined }> {
    // Device and process paths (/dev/stdout, /dev/fd/1, /proc/self/fd/1) are written in place,
    // never renamed over: as root, a rename would replace the system's /dev/stdout link. A
    // symbolic link elsewhere is followed: its target is replaced, atomically, and the link kept.
    const system = /^\/(dev|proc)\//.test(resolve(target));
    if (!system && (await lstat(target).catch(() => undefined))?.isSymbolicLink()) {
      const real = await realpath(target).catch(() => undefined);
      if (real !== undefined) target = real;
    }
    const dir = dirname(target);
    let createdDir: string | undefined;
    if (createDirs) {
      try {
        createdDir = await mkdir(dir, { recursive: true });
      } catch (cause) {
        throw fileError(cause, dir, 'create directory');
      }
    }
    await assertDirectory(dir, flag, target);
    const targetInfo = await fileTarget(target, flag);
    const special = system || (targetInfo !== undefined && !targetInfo.isFile());
    const temp = special
      ? undefined
      : join(dir, `.${basename(target)}.${randomBytes(6).toString('hex')}.partial`);
    let handle: FileHandle;
    try {
      handle = await open(temp ?? target, special ? 'w' : 'wx');
    } catch (cause) {
      throw fileError(cause, target, 'write');
    }
    const writable = new FileWritable(handle, target, !special);
    return { sink: new FileSink(target, temp, writable, expect), createdDir };
  }

  async publish(): Promise<SinkResult> {
    await this.staged;
    // A device or a pipe was written in place (no temp file): there is nothing to replace, and
    // its "version" moved with our own writes.
    const replaces = this.#temp !== undefined;
    if (
      replaces &&
      this.#expect !== undefined &&
      (await fileVersion(this.location)) !== this.#expect
    ) {
      throw new SpotifyBatchError(
        'ERR_LOCKED',
        `${this.location} changed while this run was going: not overwriting it`,
        { context: { path: this.location } },
      );
    }
    if (this.#temp !== undefined) {
      try {
        await rename(this.#temp, this.location);
      } catch (cause) {
        throw fileError(cause, this.location, 'move the output into place at');
      }
    }
    this.#published = true;
    const version = await fileVersion(this.location);
    return { location: this.location, ...(version === null ? {} : { version }) };
  }

  /** The process exits next (a second signal): remove the temp file now, without waiting. */
  async abandon(): Promise<void> {
    if (!this.#published && this.#temp !== undefined) await rm(this.#temp, { force: true });
  }

  async discard(reason: unknown): Promise<void> {
    if (this.#published) return;
    if (!this.writable.destroyed && !this.writable.writableFinished) {
      this.writable.destroy(reason instanceof Error ? reason : new Error(String(reason)));
    }
    await finished(this.writable).catch(() => {});
    if (this.#temp !== undefined) await rm(this.#temp, { force: true });
  }
}
