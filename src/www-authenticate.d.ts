// Types of the one part of www-authenticate@0.6 that ociferry uses (the package ships none).
declare module 'www-authenticate/lib/parsers.js' {
  /** What a parser made of an auth-param list: `err` set instead of throwing. */
  export interface ParsedParams {
    readonly parms: Record<string, string>;
    readonly err?: string;
  }
  const parsers: { Authentication_Info: new (params: string) => ParsedParams };
  export default parsers;
}
