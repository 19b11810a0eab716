import bcrypt from 'bcryptjs';

/** bcrypt cost for test users: low, so a registry with several users starts fast. */
const BCRYPT_COST = 5;

/**
 * Contents of an htpasswd file for distribution's `auth.htpasswd`: one `user:bcrypt-hash` line per
 * user (bcryptjs writes `$2b$`, which distribution accepts like `$2a$`/`$2y$`). The anonymous
 * user `''` has no line, since Basic auth cannot express it.
 */
export async function htpasswd(users: Record<string, { password: string }>): Promise<string> {
  const lines = await Promise.all(
    Object.entries(users)
      .filter(([name]) => name !== '')
      .map(async ([name, { password }]) => {
        if (name.includes(':')) throw new Error(`htpasswd user names cannot contain ':': ${name}`);
        return `${name}:${await bcrypt.hash(password, BCRYPT_COST)}\n`;
      }),
  );
  return lines.join('');
}
