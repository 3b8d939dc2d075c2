import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { LocalS3 } from '../../scripts/local-s3.ts';

/** Every file below `dir` (hidden ones too: a leftover `.partial` must show) with its bytes. */
export async function snapshot(dir: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    files.set(relative(dir, path), await readFile(path));
  }
  return files;
}

/** Every object of `bucket` with its bytes. */
export async function s3Snapshot(s3: LocalS3, bucket: string): Promise<Map<string, Buffer>> {
  const objects = new Map<string, Buffer>();
  for (const key of await s3.listKeys(bucket)) {
    objects.set(key, (await s3.getObject(bucket, key))?.body ?? Buffer.alloc(0));
  }
  return objects;
}
