/** @module cli/exit — `CliExit`: an error a command throws to end with a chosen exit code and a message for stderr. */

/**
 * Ends the command with `exitCode` (1 runtime failure, 2 usage or configuration error) after
 * `main` prints `ehrsync: <message>` to stderr. Commands print their stdout result first.
 */
export class CliExit extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2,
  ) {
    super(message);
    this.name = 'CliExit';
  }
}
