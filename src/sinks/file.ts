import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { SpotifyBatchError } from '../core/errors.ts';
import type { Sink, SinkResult } from '../core/sink.ts';

/**
 * Writes to a temporary file beside the target (same directory, so the final rename is atomic
 * on POSIX file systems) and renames it over the target on commit. A failed run deletes the
 * temporary file; the target is never half-written.
 *
 * A target that exists and is not a regular file (/dev/null, a named pipe, /dev/stdout) is
 * written in place: renaming over a device would replace it, and a pipe cannot be atomic.
 */
export class FileSink implements Sink {
  readonly writable: Writable;
  readonly #target: string;
  /** The temporary file, or undefined when writing in place. */
  readonly #temp: string | undefined;
  /** The topmost directory this sink created, if any. */
  readonly #created: string | undefined;

  private constructor(
    target: string,
    temp: string | undefined,
    writable: Writable,
    created?: string,
  ) {
    this.#target = target;
    this.#temp = temp;
    this.writable = writable;
    this.#created = created;
  }

  /** `createDirs`: make missing parent directories (partitioned, templated outputs). */
  static async open(target: string, { createDirs = false } = {}): Promise<FileSink> {
    const dir = dirname(target);
    // mkdir answers the first directory it had to create: those are ours to remove on failure.
    const created = createDirs ? await mkdir(dir, { recursive: true }) : undefined;
    const info = await stat(dir).catch(() => undefined);
    if (!info?.isDirectory()) {
      throw new SpotifyBatchError('ERR_CONFIG', `option --out: directory ${dir} does not exist`, {
        context: { path: target },
      });
    }
    const targetInfo = await stat(target).catch(() => undefined);
    if (targetInfo?.isDirectory()) {
      throw new SpotifyBatchError(
        'ERR_CONFIG',
        `option --out: ${target} is a directory, expected a file path`,
        {
          context: { path: target },
        },
      );
    }
    const special = targetInfo !== undefined && !targetInfo.isFile();
    const temp = special
      ? undefined
      : join(dir, `.${basename(target)}.${randomBytes(6).toString('hex')}.partial`);
    const writable = createWriteStream(temp ?? target, {
      flags: special ? 'w' : 'wx',
      highWaterMark: 64 * 1024,
    });
    // Surface open errors (permissions) now, before any fetching.
    await new Promise<void>((resolve, reject) => {
      writable.once('open', () => resolve());
      writable.once('error', (cause) =>
        reject(
          new SpotifyBatchError('ERR_SINK', `cannot write ${target}: ${(cause as Error).message}`, {
            cause,
            context: { path: target },
          }),
        ),
      );
    });
    return new FileSink(target, temp, writable, created);
  }

  async commit(): Promise<SinkResult> {
    await finished(this.writable);
    if (this.#temp === undefined) return { location: this.#target };
    try {
      await rename(this.#temp, this.#target);
    } catch (cause) {
      await rm(this.#temp, { force: true });
      throw new SpotifyBatchError(
        'ERR_SINK',
        `cannot move the output into place at ${this.#target}: ${(cause as Error).message}`,
        { cause, context: { path: this.#target } },
      );
    }
    return { location: this.#target };
  }

  async remove(): Promise<void> {
    if (this.#temp !== undefined) await rm(this.#target, { force: true });
    await this.#removeCreatedDirs();
  }

  /** Removes the directories this sink created, deepest first, as long as they are empty. */
  async #removeCreatedDirs(): Promise<void> {
    if (this.#created === undefined) return;
    for (let dir = dirname(this.#target); ; dir = dirname(dir)) {
      const removed = await rmdir(dir).then(
        () => true,
        () => false,
      );
      if (!removed || dir === this.#created || dir === dirname(dir)) return;
    }
  }

  async release(): Promise<void> {}

  async abort(): Promise<void> {
    this.writable.destroy();
    await finished(this.writable).catch(() => {});
    if (this.#temp !== undefined) await rm(this.#temp, { force: true });
    await this.#removeCreatedDirs();
  }
}
