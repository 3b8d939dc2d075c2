import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { fileError, SpotifyBatchError } from '../core/errors.ts';
import type { S3Options } from '../core/options/s3.ts';
import { type Destination, parseDestination } from '../core/options.ts';
import type { StagedSink } from '../core/sink.ts';
import type { EventListener } from '../core/stats.ts';
import { FileSink, fileVersion, probeFile } from './file.ts';
import type { S3Store } from './s3.ts';
import { StdoutSink } from './stdout.ts';

export interface OpenOptions {
  /** S3 Content-Type. */
  contentType: string;
  /** Make missing parent directories (templated, partitioned file outputs). */
  createDirs?: boolean;
  /** The flag named in errors about this output. @default '--out' */
  flag?: string;
  /**
   * Publish only if the target is still the version read earlier (see {@link Destinations.read}),
   * or still absent (null).
   */
  expect?: string | null | undefined;
}

/**
 * Opens a run's outputs by location: stdout, files, S3 objects. One S3 client serves all of a
 * run's S3 outputs, created (and the AWS SDK loaded) only when the first one is opened.
 */
export class Destinations {
  readonly #s3Options: S3Options;
  readonly #env: NodeJS.ProcessEnv;
  readonly #stdout: Writable;
  readonly #signal: AbortSignal | undefined;
  readonly #onEvent: EventListener | undefined;
  #s3: Promise<S3Store> | undefined;

  /**
   * `signal` is the run's: S3's bucket checks and uploads in flight stop when it fires.
   * `onEvent` hears what a destination cannot leave clean (an upload it could not abort).
   */
  constructor(
    s3Options: S3Options,
    env: NodeJS.ProcessEnv,
    stdout: Writable,
    signal?: AbortSignal,
    onEvent?: EventListener,
  ) {
    this.#s3Options = s3Options;
    this.#env = env;
    this.#stdout = stdout;
    this.#signal = signal;
    this.#onEvent = onEvent;
  }

  /** Opens an output; `createdDir` is the topmost directory made for it, if any. */
  async open(
    location: string,
    { contentType, createDirs = false, flag = '--out', expect }: OpenOptions,
  ): Promise<{ sink: StagedSink; createdDir?: string | undefined }> {
    const destination = parseDestination(location);
    switch (destination.kind) {
      case 'stdout':
        return { sink: new StdoutSink(this.#stdout) };
      case 'file':
        return FileSink.open(destination.path, { createDirs, flag, expect });
      case 's3': {
        const store = await this.#store();
        const condition =
          expect === undefined
            ? undefined
            : expect === null
              ? ({ ifNoneMatch: '*' } as const)
              : { ifMatch: expect };
        return { sink: await store.open({ ...destination, contentType, condition }) };
      }
    }
  }

  /**
   * Checks that an output could be written at `location`, writing nothing that stays: a file's
   * directory (or, when it would be created, the nearest existing one) must be writable; an S3
   * key gets a multipart upload created and aborted.
   */
  async probe(
    location: string,
    { contentType, createDirs = false, flag = '--out' }: OpenOptions,
  ): Promise<void> {
    const destination = parseDestination(location);
    if (destination.kind === 's3') {
      await (await this.#store()).probe({ ...destination, contentType });
      return;
    }
    if (destination.kind === 'file') await probeFile(destination.path, { flag, createDirs });
  }

  /** The version at `location` (S3 ETag; a file's size and mtime), or null when nothing is there. */
  async version(location: string): Promise<string | null> {
    const destination = parseDestination(location);
    if (destination.kind === 's3') {
      return (await this.#store()).version(destination.bucket, destination.key);
    }
    return destination.kind === 'file' ? fileVersion(destination.path) : null;
  }

  /**
   * Whether a regular file or an S3 object is at `location`: something a publish would replace.
   * A device, a named pipe or a directory is not: the first two are written in place, the last
   * is refused by its probe.
   */
  async taken(location: string): Promise<boolean> {
    const destination = parseDestination(location);
    if (destination.kind === 'file') {
      return (await stat(destination.path).catch(() => undefined))?.isFile() === true;
    }
    return (await this.version(location)) !== null;
  }

  /** What is at `location` and its version (S3 ETag; a file's size and mtime), or undefined. */
  async read(
    location: string,
  ): Promise<{ body: NodeJS.ReadableStream; version: string; modified?: Date } | undefined> {
    const destination = parseDestination(location);
    if (destination.kind === 's3') {
      return (await this.#store()).read(destination.bucket, destination.key);
    }
    if (destination.kind !== 'file') return undefined;
    const info = await stat(destination.path).catch(() => undefined);
    if (info?.isDirectory()) {
      throw new SpotifyBatchError('ERR_CONFIG', `${location} is a directory, expected a file`, {
        context: { path: location },
      });
    }
    const version = await fileVersion(destination.path);
    if (version === null || info === undefined) return undefined;
    return { body: createReadStream(destination.path), version, modified: info.mtime };
  }

  /**
   * Every object or file whose location starts with `prefix` (`s3://bucket/raw/dt=`,
   * `raw/dt=`), in no particular order: S3 keys by ListObjectsV2, files by a walk of the folder
   * the prefix names, `walk.depth` levels down (1: its own files), into hidden (dot) files and
   * folders only if `walk.hidden` (a `.git`, a killed run's `.partial`). Symlinked files are
   * followed; symlinked folders are not walked (a loop would never end). A folder that does not
   * exist holds nothing.
   */
  async list(
    prefix: string,
    walk: { depth: number; hidden: boolean } = { depth: Number.POSITIVE_INFINITY, hidden: false },
  ): Promise<string[]> {
    // A prefix is a key cut short (`raw/`, or none): checked as the key it begins.
    const destination = parseDestination(`${prefix}_`, '--from');
    if (destination.kind === 's3') {
      const { bucket } = destination;
      const keys = await (await this.#store()).list(bucket, destination.key.slice(0, -1));
      return keys.map((k) => `s3://${bucket}/${k}`);
    }
    if (destination.kind !== 'file') return [];
    const found: string[] = [];
    // Level by level: a folder is read only if what is below it can match.
    const read = async (folder: string, levels: number): Promise<void> => {
      const entries = await readdir(folder === '' ? '.' : folder, { withFileTypes: true }).catch(
        (cause: unknown) => {
          if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return [];
          throw fileError(cause, folder, 'read');
        },
      );
      for (const entry of entries) {
        const location = folder + entry.name;
        // In the prefix's own folder, only the entries it begins (`dt=` of `raw/dt=`).
        if (!location.startsWith(prefix) || (!walk.hidden && entry.name.startsWith('.'))) continue;
        // A symlink is what it names: a file is read; a folder is walked only to a finite depth
        // (a pattern without `**`), where a loop cannot go on, as bash's globstar does.
        const linked = entry.isSymbolicLink()
          ? await stat(location).catch(() => undefined)
          : undefined;
        if (entry.isDirectory() || (linked?.isDirectory() && Number.isFinite(walk.depth))) {
          if (levels > 1) await read(`${location}/`, levels - 1);
        } else if (entry.isFile() || linked?.isFile()) {
          found.push(location);
        }
      }
    };
    await read(prefix.slice(0, prefix.lastIndexOf('/') + 1), walk.depth);
    return found;
  }

  /**
   * Writes a small text only if nothing is at `location` (`expect` null: an exclusive create) or
   * the version there is still `expect`. Answers the new version, or false when the condition
   * failed.
   */
  async writeIf(location: string, text: string, expect: string | null): Promise<string | false> {
    const destination = parseDestination(location);
    if (destination.kind === 's3') {
      return (await this.#store()).putIf({
        ...destination,
        body: text,
        contentType: 'application/json',
        condition: expect === null ? { ifNoneMatch: '*' } : { ifMatch: expect },
      });
    }
    if (destination.kind !== 'file') throw new Error(`cannot write ${location} conditionally`);
    const path = destination.path;
    // Take-over of a stale file, only if it is still the one that was read.
    if (expect !== null && !(await removeFileIf(path, expect))) return false;
    // Written whole beside it, then linked into place: link() fails if the name exists, as
    // `wx` would, but a reader never sees the file before its text (with `wx` it exists empty
    // for a moment, and a run reading a lease then found it unreadable).
    const aside = join(
      dirname(path),
      `.${basename(path)}.${randomBytes(6).toString('hex')}.partial`,
    );
    try {
      await writeFile(aside, text, { flag: 'wx' });
      await link(aside, path);
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return false;
      if (code === 'ENOENT') {
        throw new SpotifyBatchError('ERR_CONFIG', `directory ${dirname(path)} does not exist`, {
          context: { path },
        });
      }
      throw fileError(cause, path, 'write');
    } finally {
      await rm(aside, { force: true });
    }
    return (await fileVersion(path)) ?? '';
  }

  /**
   * Removes what is at `location` only while its version is still `expect` (S3: a conditional
   * DeleteObject; a file: moved aside, then checked). Answers false when it changed or is gone.
   */
  async deleteIf(location: string, expect: string): Promise<boolean> {
    const destination = parseDestination(location);
    if (destination.kind === 's3') {
      return (await this.#store()).deleteIf(destination.bucket, destination.key, expect);
    }
    if (destination.kind !== 'file') throw new Error(`cannot delete ${location} conditionally`);
    return removeFileIf(destination.path, expect);
  }

  /** Removes what is at `location`, if anything (the commit invalidates an old manifest). */
  async delete(location: string): Promise<void> {
    const destination: Destination = parseDestination(location);
    if (destination.kind === 'file') {
      await rm(destination.path, { force: true }).catch((cause: unknown) => {
        throw fileError(cause, destination.path, 'remove');
      });
    } else if (destination.kind === 's3') {
      await (await this.#store()).delete(destination.bucket, destination.key);
    }
  }

  async close(): Promise<void> {
    const store = await this.#s3?.catch(() => undefined);
    store?.close();
  }

  #store(): Promise<S3Store> {
    this.#s3 ??= import('./s3.ts').then(({ S3Store }) =>
      S3Store.create(this.#s3Options, this.#env, this.#signal, this.#onEvent),
    );
    return this.#s3;
  }
}

/**
 * Removes the file at `path` only if it is still the version `expect`: moved aside by a rename
 * (of two processes doing this at once, one rename finds nothing), then checked. Someone else's
 * file moved aside by mistake is put back, unless another took the place meanwhile. A look
 * first leaves a file that is already another version where it is: only a file replaced
 * between that look and the rename (a moment) is ever moved aside.
 */
async function removeFileIf(path: string, expect: string): Promise<boolean> {
  if ((await fileVersion(path)) !== expect) return false;
  const aside = `${path}.${randomBytes(4).toString('hex')}.old`;
  if (
    !(await rename(path, aside).then(
      () => true,
      () => false,
    ))
  )
    return false;
  if ((await fileVersion(aside)) !== expect) {
    await link(aside, path).catch(() => {});
    await rm(aside, { force: true });
    return false;
  }
  await rm(aside, { force: true });
  return true;
}
