/**
 * A real BuildKit for tests: Debian's `dockerd` (20.10, BuildKit built in) started like the test
 * registry, with its own data root, exec root, socket, pid file and config file, driven with
 * Debian's `/usr/bin/docker` client. Builds return BuildKit's progress output parsed per vertex,
 * so tests can read which steps BuildKit served from cache (`CACHED`).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { constants, existsSync, readFileSync, rmSync } from 'node:fs';
import { access, mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TestFn } from 'ava';
import { Agent, request } from 'undici';
import { aptInstall, canAptInstall, which } from './registry-binary.ts';
import { type TarSpec, tar } from './tar-writer.ts';

/** Debian packages a BuildKit test needs. */
export const BUILDKIT_PACKAGES = ['docker.io', 'containerd', 'runc', 'busybox-static'] as const;
/** The command that installs them; quoted verbatim in skip reasons. */
export const BUILDKIT_INSTALL_COMMAND = `apt-get install -y --no-install-recommends ${BUILDKIT_PACKAGES.join(' ')}`;
/**
 * Debian's docker client. Machines of this kind may carry a newer client first on PATH that refuses
 * `DOCKER_BUILDKIT=1` builds without buildx, so the client is called by its full path.
 */
export const DOCKER_CLIENT = '/usr/bin/docker';
/** When set to 1, a missing BuildKit fails the test file instead of skipping it (CI sets it). */
export const REQUIRE_BUILDKIT_ENV = 'OCIFERRY_REQUIRE_BUILDKIT';

const STARTUP_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 20_000;
const OUTPUT_TAIL_CHARS = 8192;
const BUSYBOX_PATHS = ['/bin/busybox', '/usr/bin/busybox'];
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** BuildKit cannot be had on this machine; `message` says why and how to fix it. */
export class BuildkitUnavailableError extends Error {
  readonly code = 'BUILDKIT_UNAVAILABLE';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BuildkitUnavailableError';
  }
}

/** The programs a test BuildKit runs. */
export interface BuildkitTools {
  dockerd: string;
  docker: string;
  /** A statically linked busybox, the base image's only program. */
  busybox: string;
}

/** Options of {@link resolveBuildkitTools}. */
export interface ResolveBuildkitToolsOptions {
  /** Environment to read `PATH` from; default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Installs the packages when something is missing and we may; default apt-get as root. */
  install?: () => Promise<void>;
  /** Whether this process may install (root with apt-get); default from the machine. */
  canInstall?: boolean;
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** True when `path` is an ELF executable without an interpreter (statically linked). */
export async function isStaticExecutable(path: string): Promise<boolean> {
  let bytes: Buffer;
  try {
    const handle = await open(path, 'r');
    try {
      bytes = Buffer.alloc(64 * 1024);
      const { bytesRead } = await handle.read(bytes, 0, bytes.length, 0);
      bytes = bytes.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  } catch {
    return false;
  }
  // ELF64 little-endian only: e_phoff at 32, e_phentsize at 54, e_phnum at 56; PT_INTERP = 3.
  if (bytes.length < 64 || bytes.readUInt32BE(0) !== 0x7f454c46 || bytes[4] !== 2 || bytes[5] !== 1)
    return false;
  const phoff = Number(bytes.readBigUInt64LE(32));
  const phentsize = bytes.readUInt16LE(54);
  const phnum = bytes.readUInt16LE(56);
  if (phoff + phentsize * phnum > bytes.length) return false;
  for (let i = 0; i < phnum; i++) {
    if (bytes.readUInt32LE(phoff + i * phentsize) === 3) return false;
  }
  return true;
}

async function findTools(env: NodeJS.ProcessEnv): Promise<Partial<BuildkitTools>> {
  let busybox: string | undefined;
  for (const candidate of BUSYBOX_PATHS) {
    if (await isStaticExecutable(candidate)) {
      busybox = candidate;
      break;
    }
  }
  return {
    dockerd: await which('dockerd', env.PATH),
    docker: (await isExecutable(DOCKER_CLIENT)) ? DOCKER_CLIENT : undefined,
    busybox,
  };
}

function missingTools(tools: Partial<BuildkitTools>): string[] {
  const missing: string[] = [];
  if (!tools.dockerd) missing.push('dockerd');
  if (!tools.docker) missing.push(DOCKER_CLIENT);
  if (!tools.busybox) missing.push('a statically linked busybox');
  return missing;
}

/**
 * The BuildKit programs, installing the Debian packages first when one is missing and this process
 * is root on a machine with apt-get. Throws {@link BuildkitUnavailableError} saying what is missing.
 */
export async function resolveBuildkitTools(
  options: ResolveBuildkitToolsOptions = {},
): Promise<BuildkitTools> {
  const { env = process.env, install = () => aptInstall(BUILDKIT_PACKAGES) } = options;
  let tools = await findTools(env);
  let missing = missingTools(tools);
  if (missing.length === 0) return tools as BuildkitTools;
  const canInstall = options.canInstall ?? (await canAptInstall(env.PATH));
  if (!canInstall) {
    throw new BuildkitUnavailableError(
      `${missing.join(', ')} not found and this process cannot install them (needs root and ` +
        `apt-get). Install with: ${BUILDKIT_INSTALL_COMMAND}`,
    );
  }
  try {
    await install();
  } catch (cause) {
    throw new BuildkitUnavailableError(
      `${missing.join(', ')} not found and '${BUILDKIT_INSTALL_COMMAND}' failed`,
      { cause },
    );
  }
  tools = await findTools(env);
  missing = missingTools(tools);
  if (missing.length > 0) {
    throw new BuildkitUnavailableError(
      `'${BUILDKIT_INSTALL_COMMAND}' succeeded but ${missing.join(', ')} still not found`,
    );
  }
  return tools as BuildkitTools;
}

/** One vertex of a build as BuildKit's plain progress output shows it. */
export interface BuildVertex {
  /** The progress number, `#N`. */
  readonly id: number;
  /** As printed, e.g. `[2/4] COPY a.txt /a.txt` or `[internal] load build context`. */
  readonly name: string;
  /** The vertex digest BuildKit printed (not a cache key). */
  readonly digest: string | undefined;
  /** BuildKit served it from cache: it printed `CACHED`. */
  readonly cached: boolean;
  /** It printed `DONE` (ran, or a source that was resolved). */
  readonly done: boolean;
  /** The `ERROR` line, if any. */
  readonly error: string | undefined;
}

/** A Dockerfile step vertex: `[stage k/n] INSTRUCTION`. */
export interface BuildStep extends BuildVertex {
  /** The stage name as BuildKit prints it (`builder`, `stage-1`); '' for a single-stage build. */
  readonly stage: string;
  /** k of `k/n`: 1 is the stage's `FROM`. */
  readonly index: number;
  /** n of `k/n`: the number of steps of the stage. */
  readonly count: number;
  /** The instruction as printed, e.g. `RUN echo one > /one`. */
  readonly instruction: string;
}

const VERTEX_LINE = /^#(\d+) (.*)$/;
const STEP_NAME = /^\[(?:(\S+) )?(\d+)\/(\d+)\] (.*)$/s;

/**
 * Parse `--progress plain` output into vertices in order of first appearance. A vertex's first
 * line is its name; 20.10 prints its digest on the next line; `CACHED`, `DONE t` and `ERROR: …`
 * are its states. Other lines (logs, `resolve …`, `pulling …`) are ignored.
 */
export function parseBuildProgress(output: string): BuildVertex[] {
  const vertices = new Map<
    number,
    { id: number; name: string; digest?: string; cached: boolean; done: boolean; error?: string }
  >();
  for (const line of output.split('\n')) {
    const match = VERTEX_LINE.exec(line.trimEnd());
    if (!match) continue;
    const id = Number(match[1]);
    const text = match[2] as string;
    const vertex = vertices.get(id);
    if (vertex === undefined) {
      vertices.set(id, { id, name: text, cached: false, done: false });
    } else if (text === vertex.name) {
      // The name again: plain output repeats it when it switches back to this vertex.
    } else if (/^sha256:[0-9a-f]{64}$/.test(text) && vertex.digest === undefined) {
      vertex.digest = text;
    } else if (text === 'CACHED') {
      vertex.cached = true;
    } else if (/^DONE( [0-9.]+s)?$/.test(text)) {
      vertex.done = true;
    } else if (text.startsWith('ERROR')) {
      vertex.error = text;
    }
  }
  return [...vertices.values()].map((v) => ({
    id: v.id,
    name: v.name,
    digest: v.digest,
    cached: v.cached,
    done: v.done,
    error: v.error,
  }));
}

/** The Dockerfile step vertices among `vertices`, in the order BuildKit printed them. */
export function buildSteps(vertices: readonly BuildVertex[]): BuildStep[] {
  const steps: BuildStep[] = [];
  for (const vertex of vertices) {
    const match = STEP_NAME.exec(vertex.name);
    if (!match) continue;
    steps.push({
      ...vertex,
      stage: match[1] ?? '',
      index: Number(match[2]),
      count: Number(match[3]),
      instruction: match[4] as string,
    });
  }
  return steps;
}

/** What a build printed and did. */
export interface BuildResult {
  /** Every vertex, in order of first appearance. */
  readonly vertices: BuildVertex[];
  /** The Dockerfile steps (`[stage k/n] …`), in order of first appearance. */
  readonly steps: BuildStep[];
  /** The whole progress output. */
  readonly output: string;
}

/** Options of {@link TestBuildkit.build}. */
export interface BuildOptions {
  /** Directory with the Dockerfile and the build context. */
  context: string;
  /** `-t`: the image name, e.g. `127.0.0.1:5000/app:v1`. */
  tag?: string;
  /** `--cache-from` references. */
  cacheFrom?: readonly string[];
  /** Embed an inline cache (`--build-arg BUILDKIT_INLINE_CACHE=1`); default true. */
  inlineCache?: boolean;
  /** `--target`: build this stage only. */
  target?: string;
  signal?: AbortSignal;
}

/** What a docker client call printed. */
export interface DockerOutput {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A running dockerd and the client that talks to it. */
export interface TestBuildkit {
  /** Temporary directory holding data root, exec root, socket, pid file and log. */
  readonly dir: string;
  /** `overlay2`, or `vfs` where overlay2 failed. */
  readonly storageDriver: string;
  /** Environment for the docker client: `DOCKER_HOST`, `DOCKER_CONFIG`, `DOCKER_BUILDKIT=1`. */
  readonly env: NodeJS.ProcessEnv;
  /** Run `/usr/bin/docker ARGS…`; resolves whatever the exit code. */
  docker(
    args: readonly string[],
    options?: { input?: Buffer; signal?: AbortSignal },
  ): Promise<DockerOutput>;
  /** Build with BuildKit (`--network none --progress plain`); throws when the build fails. */
  build(options: BuildOptions): Promise<BuildResult>;
  /** `docker push REF`; resolves with the pushed manifest's digest. */
  push(ref: string): Promise<string>;
  /**
   * Make a base image from the static busybox (every applet linked in /bin, `ENV PATH=/bin`) plus
   * `files`, and push it as `ref`. Resolves with the manifest digest.
   */
  baseImage(ref: string, files?: Record<string, string>): Promise<string>;
  /** Forget every build cache record and image, so the next build starts cold. */
  wipe(): Promise<void>;
  /** Everything dockerd logged so far. */
  log(): Promise<string>;
  /** Stop dockerd by its PID (it stops its containerd) and remove the directory. */
  stop(): Promise<void>;
}

/** Options of {@link startBuildkit}. */
export interface StartBuildkitOptions {
  /** Storage drivers to try in order; default overlay2, then vfs. */
  storageDrivers?: readonly string[];
  tools?: BuildkitTools;
}

/** dockerds still running, with their directories; cleaned up if the test process exits first. */
const live = new Map<ChildProcess, string>();
let exitHookInstalled = false;

function killOnExit(child: ChildProcess, dir: string): void {
  live.set(child, dir);
  child.once('exit', () => live.delete(child));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const [c, d] of live) {
      c.kill('SIGKILL');
      const pidFile = containerdPidFile(d);
      if (existsSync(pidFile)) killPid(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL');
      // dockerd bind-mounts its data root onto itself; a killed one leaves that mounted.
      for (const point of mountPointsUnder(readFileSync('/proc/self/mounts', 'utf8'), d)) {
        spawnSync('umount', ['-l', point]);
      }
      rmSync(d, { recursive: true, force: true });
    }
  });
}

/** Where dockerd's managed containerd writes its PID. */
function containerdPidFile(dir: string): string {
  return join(dir, 'exec', 'containerd', 'containerd.pid');
}

/** Mount points under `dir` in a mounts table (`/proc/self/mounts`), deepest first. */
function mountPointsUnder(mounts: string, dir: string): string[] {
  return mounts
    .split('\n')
    .map((line) => (line.split(' ')[1] ?? '').replace(/\\040/g, ' '))
    .filter((point) => point.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

function killPid(pid: number, signal: NodeJS.Signals | 0): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

function isAlive(pid: number): boolean {
  return killPid(pid, 0);
}

/** The environment of dockerd: the machine's, without DOCKER_* variables, with sbin on PATH. */
function daemonEnv(): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith('DOCKER_')),
  );
  env.PATH = [process.env.PATH, SYSTEM_PATH].filter(Boolean).join(':');
  return env;
}

function tail(text: string): string {
  return text.length > OUTPUT_TAIL_CHARS ? `…${text.slice(-OUTPUT_TAIL_CHARS)}` : text;
}

/** One dockerd process with its files under `dir`. */
class DockerdProcess {
  readonly socket: string;
  readonly logPath: string;
  readonly containerdPidFile: string;
  readonly #child: ChildProcess;
  readonly #agent: Agent;
  readonly #exited: Promise<void>;
  #exitReason: string | undefined;

  constructor(dockerd: string, dir: string, storageDriver: string, logFd: number) {
    this.socket = join(dir, 'docker.sock');
    this.logPath = join(dir, 'dockerd.log');
    const execRoot = join(dir, 'exec');
    this.containerdPidFile = containerdPidFile(dir);
    this.#agent = new Agent({ connect: { socketPath: this.socket } });
    this.#child = spawn(
      dockerd,
      [
        '--config-file',
        join(dir, 'daemon.json'),
        '--data-root',
        join(dir, 'data'),
        '--exec-root',
        execRoot,
        '--pidfile',
        join(dir, 'docker.pid'),
        '--host',
        `unix://${this.socket}`,
        '--iptables=false',
        '--ip-masq=false',
        '--bridge=none',
        '--storage-driver',
        storageDriver,
      ],
      { stdio: ['ignore', logFd, logFd], env: daemonEnv() },
    );
    killOnExit(this.#child, dir);
    // dockerd does not keep the test process running: when ava runs none of a file's tests
    // (`--match`), it skips the hook that stops dockerd, and the process ends, killing it.
    this.#child.unref();
    this.#exited = new Promise((resolve) => {
      this.#child.once('error', (error) => {
        this.#exitReason = `failed to start: ${error.message}`;
        resolve();
      });
      this.#child.once('close', (code, signal) => {
        this.#exitReason ??= `exited with ${signal ?? `code ${code}`}`;
        resolve();
      });
    });
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get exitReason(): string | undefined {
    return this.#exitReason;
  }

  /** Poll `GET /_ping` on the socket; false when the process died or time ran out. */
  async waitReady(): Promise<boolean> {
    const deadline = Date.now() + STARTUP_TIMEOUT_MS;
    while (this.#exitReason === undefined && Date.now() < deadline) {
      try {
        const res = await request('http://docker/_ping', { dispatcher: this.#agent });
        const body = await res.body.text();
        if (res.statusCode === 200 && body === 'OK') return true;
      } catch {
        // Not listening yet.
      }
      await sleep(50);
    }
    return false;
  }

  /** SIGTERM (dockerd then stops its containerd), SIGKILL after a grace period, then containerd. */
  async stop(): Promise<void> {
    const containerdPid = await readFile(this.containerdPidFile, 'utf8').then(Number, () => 0);
    if (this.#exitReason === undefined) {
      this.#child.kill('SIGTERM');
      // The grace timer is cancelled once dockerd exits: left running, it would hold the test
      // process open for the whole grace period after its last test.
      const grace = new AbortController();
      const killed = await Promise.race([
        this.#exited.then(() => false),
        sleep(STOP_TIMEOUT_MS, true, { signal: grace.signal }),
      ]);
      grace.abort();
      if (killed) this.#child.kill('SIGKILL');
    }
    await this.#exited;
    await this.#agent.close();
    const deadline = Date.now() + STOP_TIMEOUT_MS;
    while (isAlive(containerdPid) && Date.now() < deadline) await sleep(50);
    killPid(containerdPid, 'SIGKILL');
  }
}

/** Unmount whatever is still mounted under `dir` (deepest first) so it can be removed. */
async function unmountUnder(dir: string): Promise<void> {
  const mounts = await readFile('/proc/self/mounts', 'utf8').catch(() => '');
  for (const point of mountPointsUnder(mounts, dir)) {
    await run('umount', ['-l', point]).catch(() => undefined);
  }
}

function run(
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; input?: Buffer; signal?: AbortSignal } = {},
): Promise<DockerOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      signal: options.signal,
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({
        code,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
      }),
    );
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });
}

/** The root file system of the base image: busybox and a symlink per applet, plus `files`. */
async function baseRootfs(busybox: string, files: Record<string, string>): Promise<Buffer> {
  const applets = (await run(busybox, ['--list'])).stdout
    .split('\n')
    .filter((a) => /^[\w.[-]+$/.test(a));
  const specs: TarSpec[] = [
    { path: 'bin/', type: 'directory' },
    { path: 'bin/busybox', data: await readFile(busybox), mode: 0o755 },
    ...applets
      .filter((applet) => applet !== 'busybox')
      .map((applet): TarSpec => ({ path: `bin/${applet}`, type: 'symlink', linkpath: 'busybox' })),
    { path: 'tmp/', type: 'directory', mode: 0o1777 },
  ];
  const dirs = new Set<string>(['bin', 'tmp']);
  for (const [path, data] of Object.entries(files)) {
    const parts = path.replace(/^\/+/, '').split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!dirs.has(dir)) specs.push({ path: `${dir}/`, type: 'directory' });
      dirs.add(dir);
    }
    specs.push({ path: parts.join('/'), data });
  }
  return tar(specs);
}

/**
 * Start a dockerd in a fresh temporary directory (overlay2, or vfs where overlay2 fails) and wait
 * until it answers. Throws {@link BuildkitUnavailableError} when it cannot be had.
 */
export async function startBuildkit(options: StartBuildkitOptions = {}): Promise<TestBuildkit> {
  if (process.getuid?.() !== 0) {
    throw new BuildkitUnavailableError(
      'dockerd needs root: run the tests as root (as CI does) to include the BuildKit tests',
    );
  }
  const tools = options.tools ?? (await resolveBuildkitTools());
  const drivers = options.storageDrivers ?? ['overlay2', 'vfs'];
  const dir = await mkdtemp(join(tmpdir(), 'ociferry-dockerd-'));
  const failures: string[] = [];
  let proc: DockerdProcess | undefined;
  let driver = '';
  try {
    const dockerConfig = join(dir, 'client');
    await mkdir(dockerConfig);
    await writeFile(join(dockerConfig, 'config.json'), '{}\n');
    // A config file of our own: /etc/docker/daemon.json stays out, and the daemon's key is ours.
    await writeFile(
      join(dir, 'daemon.json'),
      `${JSON.stringify({ 'deprecated-key-path': join(dir, 'key.json') })}\n`,
    );
    for (const candidate of drivers) {
      const log = await open(join(dir, 'dockerd.log'), 'a');
      try {
        await log.write(`--- starting dockerd with --storage-driver ${candidate}\n`);
        proc = new DockerdProcess(tools.dockerd, dir, candidate, log.fd);
      } finally {
        await log.close();
      }
      if (await proc.waitReady()) {
        driver = candidate;
        break;
      }
      await proc.stop();
      failures.push(`${candidate}: ${proc.exitReason ?? 'did not answer in time'}`);
      proc = undefined;
      await unmountUnder(dir);
      await rm(join(dir, 'data'), { recursive: true, force: true });
      await rm(join(dir, 'exec'), { recursive: true, force: true });
    }
    if (proc === undefined) {
      const log = await readFile(join(dir, 'dockerd.log'), 'utf8').catch(() => '');
      throw new BuildkitUnavailableError(
        `dockerd did not start (${failures.join('; ')}); its log:\n${tail(log)}`,
      );
    }
  } catch (error) {
    await unmountUnder(dir);
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return new RunningBuildkit(dir, driver, proc, tools);
}

class RunningBuildkit implements TestBuildkit {
  readonly dir: string;
  readonly storageDriver: string;
  readonly env: NodeJS.ProcessEnv;
  readonly #proc: DockerdProcess;
  readonly #tools: BuildkitTools;
  #stopping: Promise<void> | undefined;

  constructor(dir: string, storageDriver: string, proc: DockerdProcess, tools: BuildkitTools) {
    this.dir = dir;
    this.storageDriver = storageDriver;
    this.#proc = proc;
    this.#tools = tools;
    this.env = {
      PATH: daemonEnv().PATH,
      HOME: dir,
      DOCKER_HOST: `unix://${proc.socket}`,
      DOCKER_CONFIG: join(dir, 'client'),
      DOCKER_BUILDKIT: '1',
    };
  }

  docker(
    args: readonly string[],
    options: { input?: Buffer; signal?: AbortSignal } = {},
  ): Promise<DockerOutput> {
    return run(this.#tools.docker, args, { ...options, env: this.env });
  }

  async #dockerOk(args: readonly string[], input?: Buffer): Promise<DockerOutput> {
    const out = await this.docker(args, input ? { input } : {});
    if (out.code !== 0) {
      throw new Error(
        `docker ${args.join(' ')} failed (code ${out.code}):\n${tail(out.stderr || out.stdout)}`,
      );
    }
    return out;
  }

  async build(options: BuildOptions): Promise<BuildResult> {
    const args = ['build', '--network', 'none', '--progress', 'plain'];
    if (options.inlineCache ?? true) args.push('--build-arg', 'BUILDKIT_INLINE_CACHE=1');
    for (const ref of options.cacheFrom ?? []) args.push('--cache-from', ref);
    if (options.target) args.push('--target', options.target);
    if (options.tag) args.push('--tag', options.tag);
    args.push(options.context);
    const out = await this.docker(args, options.signal ? { signal: options.signal } : {});
    // The plain progress goes to stderr.
    const output = out.stderr + out.stdout;
    if (out.code !== 0) {
      throw new Error(`docker ${args.join(' ')} failed (code ${out.code}):\n${tail(output)}`);
    }
    const vertices = parseBuildProgress(output);
    return { vertices, steps: buildSteps(vertices), output };
  }

  async push(ref: string): Promise<string> {
    const out = await this.#dockerOk(['push', ref]);
    const digest = /digest: (sha256:[0-9a-f]{64}) size:/.exec(out.stdout)?.[1];
    if (digest === undefined)
      throw new Error(`docker push ${ref} printed no digest:\n${out.stdout}`);
    return digest;
  }

  async baseImage(ref: string, files: Record<string, string> = {}): Promise<string> {
    const rootfs = await baseRootfs(this.#tools.busybox, files);
    await this.#dockerOk(['import', '--change', 'ENV PATH=/bin', '-', ref], rootfs);
    return this.push(ref);
  }

  async wipe(): Promise<void> {
    // Removes the whole build cache too (what `builder prune --all` would).
    await this.#dockerOk(['system', 'prune', '--all', '--force']);
    const left = (await this.#dockerOk(['image', 'ls', '--all', '--quiet'])).stdout.trim();
    if (left !== '') await this.#dockerOk(['image', 'rm', '--force', ...left.split(/\s+/)]);
  }

  log(): Promise<string> {
    return readFile(this.#proc.logPath, 'utf8');
  }

  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      await this.#proc.stop();
      await unmountUnder(this.dir);
      await rm(this.dir, { recursive: true, force: true });
    })();
    return this.#stopping;
  }
}

/** A BuildKit for a test file, or why there is none. */
export type BuildkitForTests =
  | { readonly buildkit: TestBuildkit; readonly reason?: undefined }
  | { readonly buildkit?: undefined; readonly reason: string };

/**
 * Start one dockerd for a whole test file: await it at the top of the file before declaring any
 * test (ava starts a file on the tick after its first declaration). When BuildKit cannot be had it registers a skipped test whose title gives the
 * reason, prints it, and resolves with `{ reason }` so the file declares its tests with
 * `test.skip`; with `OCIFERRY_REQUIRE_BUILDKIT=1` it throws instead. Stops dockerd in
 * `test.after.always`.
 */
export async function buildkitForTests(test: TestFn): Promise<BuildkitForTests> {
  try {
    const buildkit = await startBuildkit();
    try {
      test.after.always('stop dockerd', () => buildkit.stop());
    } catch (error) {
      // Too late to declare hooks (tests declared before this call): stop, then say why.
      await buildkit.stop();
      throw error;
    }
    return { buildkit };
  } catch (error) {
    if (!(error instanceof BuildkitUnavailableError) || process.env[REQUIRE_BUILDKIT_ENV] === '1')
      throw error;
    const reason = error.message.split('\n')[0] as string;
    console.warn(`BuildKit tests skipped: ${error.message}`);
    test.skip(`BuildKit unavailable: ${reason}`, () => {});
    return { reason };
  }
}
