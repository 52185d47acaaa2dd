/**
 * All-or-nothing output: files are written into a staging folder beside the output folder and renamed into it at
 * the end, so an interrupted or failed run leaves no half-written file (and no folder it created).
 */
import { existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { badInput } from './errors';

export class StagedOutput {
  private staging: string | undefined;
  private createdRoot: string | undefined;
  private readonly files: string[] = [];

  /** Checks the destination now (bad input: exit 2), before any work is done. */
  constructor(readonly dir: string) {
    if (existsSync(dir) && !statSync(dir).isDirectory()) badInput(`--out ${dir} exists and is not a folder`);
  }

  /** Writes one file into the staging folder. */
  write(name: string, content: string): void {
    if (!this.staging) {
      const parent = dirname(this.dir);
      this.createdRoot = mkdirSync(parent, { recursive: true });
      this.staging = join(parent, `.${basename(this.dir)}.partial-${process.pid}`);
      mkdirSync(this.staging, { recursive: true });
    }
    writeFileSync(join(this.staging, name), content);
    this.files.push(name);
  }

  /**
   * Moves the staged files into the output folder: one rename of the whole staging folder when the output folder
   * is new, else one rename per file (each replaces an older file of that name).
   */
  commit(): string[] {
    if (!this.staging) return [];
    if (!existsSync(this.dir)) {
      renameSync(this.staging, this.dir);
    } else {
      for (const name of this.files) renameSync(join(this.staging, name), join(this.dir, name));
      rmSync(this.staging, { recursive: true, force: true });
    }
    this.staging = undefined;
    this.createdRoot = undefined;
    return this.files.map((name) => join(this.dir, name));
  }

  /** Removes the staging folder and any parent folder this run created. Safe to call twice. */
  abort(): void {
    if (this.staging) rmSync(this.staging, { recursive: true, force: true });
    if (this.createdRoot) rmSync(this.createdRoot, { recursive: true, force: true });
    this.staging = undefined;
    this.createdRoot = undefined;
  }
}
