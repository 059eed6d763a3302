/**
 * Go programs the tests build over Debian's Go sources (GOPATH mode:
 * golang-etcd-server-dev and the packages it pulls in, bbolt among them):
 * whether they can be built, and the build itself. The build cache outlives
 * the run, so only the first build of a machine compiles the dependencies.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const debianGopath = '/usr/share/gocode';

/** Why a Go program needing the package at srcPath (under GOPATH's src) cannot be built here, or false. */
export function goMissing(srcPath: string, install: string): string | false {
  if (spawnSync('go', ['version']).status !== 0) return 'the Go toolchain is not installed (apt-get install golang-go)';
  if (!existsSync(join(debianGopath, 'src', srcPath))) return `${srcPath} sources are not installed (apt-get install ${install})`;
  return false;
}

/** Builds the Go program in sourceDir into bin; fails the test with go's output if it does not build. */
export function goBuild(sourceDir: string, bin: string, timeoutMs: number): void {
  const build = spawnSync('go', ['build', '-o', bin, '.'], {
    cwd: sourceDir,
    timeout: timeoutMs,
    encoding: 'utf8',
    env: { ...process.env, GO111MODULE: 'off', GOPATH: debianGopath, GOFLAGS: '', GOCACHE: join(tmpdir(), 'etcd-ts-gocache') },
  });
  assert.equal(build.status, 0, `go build failed: ${build.error?.message ?? ''}\n${build.stderr}`);
}
