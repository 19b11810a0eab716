import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Name of the Debian package and of its binary. */
const PACKAGE = 'docker-registry';

/** The command that installs the registry on Debian/Ubuntu; quoted verbatim in errors. */
export const REGISTRY_INSTALL_COMMAND = `apt-get install -y ${PACKAGE}`;

/** The registry binary was not found (or not executable) and could not be installed. */
export class RegistryBinaryMissingError extends Error {
  readonly code = 'REGISTRY_BINARY_MISSING';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RegistryBinaryMissingError';
  }
}

/** Options of {@link resolveRegistryBinary}. */
export interface ResolveRegistryBinaryOptions {
  /** Environment to read `OCI_REGISTRY_BIN` and `PATH` from; default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Installs the registry when it is missing and we may (root with apt-get); default apt-get, once per process. */
  install?: () => Promise<void>;
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** First executable `name` on `pathVariable`, like `which`. */
export async function which(
  name: string,
  pathVariable: string | undefined,
): Promise<string | undefined> {
  for (const dir of (pathVariable ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    if (await isExecutable(candidate)) return candidate;
  }
  return undefined;
}

async function aptGet(args: string[]): Promise<void> {
  await execFileAsync('apt-get', args, {
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    maxBuffer: 64 * 1024 * 1024,
  });
}

const installations = new Map<string, Promise<void>>();

/**
 * `apt-get install -y --no-install-recommends PACKAGES`, after `apt-get update` if the first
 * attempt fails; once per package list and process.
 */
export function aptInstall(packages: readonly string[]): Promise<void> {
  const key = packages.join(' ');
  let installation = installations.get(key);
  if (installation === undefined) {
    const args = ['install', '-y', '--no-install-recommends', ...packages];
    installation = aptGet(args).catch(async () => {
      await aptGet(['update']);
      await aptGet(args);
    });
    installations.set(key, installation);
  }
  return installation;
}

/** True when this process may install packages: root on a machine with apt-get on `pathVariable`. */
export async function canAptInstall(pathVariable: string | undefined): Promise<boolean> {
  return process.getuid?.() === 0 && (await which('apt-get', pathVariable)) !== undefined;
}

function installWithApt(): Promise<void> {
  return aptInstall([PACKAGE]);
}

/**
 * Path of the distribution registry binary: `OCI_REGISTRY_BIN` when set (never installs then),
 * else `docker-registry` on PATH, installing it with apt-get first when running as root on a
 * machine that has apt-get. Otherwise throws {@link RegistryBinaryMissingError} naming the
 * install command.
 */
export async function resolveRegistryBinary(
  options: ResolveRegistryBinaryOptions = {},
): Promise<string> {
  const { env = process.env, install = installWithApt } = options;
  const explicit = env.OCI_REGISTRY_BIN;
  if (explicit) {
    if (await isExecutable(explicit)) return explicit;
    throw new RegistryBinaryMissingError(
      `OCI_REGISTRY_BIN is set to ${explicit}, which is not an executable file. Point it at a ` +
        `distribution registry binary, or unset it and install one with: ${REGISTRY_INSTALL_COMMAND}`,
    );
  }
  const found = await which(PACKAGE, env.PATH);
  if (found) return found;
  if (!(await canAptInstall(env.PATH))) {
    throw new RegistryBinaryMissingError(
      `${PACKAGE} is not on PATH. Install it with: ${REGISTRY_INSTALL_COMMAND} (as root), ` +
        'or set OCI_REGISTRY_BIN to a distribution registry binary.',
    );
  }
  try {
    await install();
  } catch (cause) {
    throw new RegistryBinaryMissingError(
      `${PACKAGE} is not on PATH and '${REGISTRY_INSTALL_COMMAND}' failed; run it by hand, ` +
        'or set OCI_REGISTRY_BIN to a distribution registry binary.',
      { cause },
    );
  }
  const installed = await which(PACKAGE, env.PATH);
  if (installed) return installed;
  throw new RegistryBinaryMissingError(
    `'${REGISTRY_INSTALL_COMMAND}' succeeded but ${PACKAGE} is still not on PATH; ` +
      'set OCI_REGISTRY_BIN to its location.',
  );
}
