//! kubectl, built from the same module as the server, run with a deadline.

use crate::Result;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

#[derive(Clone, Debug)]
pub struct Kubectl {
    pub bin: PathBuf,
    pub kubeconfig: PathBuf,
}

#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Lines the API server sent as warnings (kubectl prints them as `Warning: ...`).
    pub fn warnings(&self) -> Vec<&str> {
        self.stderr.lines().filter(|l| l.starts_with("Warning:")).collect()
    }
}

impl Kubectl {
    /// Runs `kubectl args` with `stdin`, killed after 120 s.
    pub async fn run(&self, args: &[&str], stdin: Option<&str>) -> Result<Output> {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| format!("cannot run {}: {e}", self.bin.display()))?;
        if let Some(text) = stdin
            && let Some(mut pipe) = child.stdin.take()
        {
            pipe.write_all(text.as_bytes()).await.map_err(|e| e.to_string())?;
        }
        let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
            .await
            .map_err(|_| format!("kubectl {} took more than 120 s", args.join(" ")))?
            .map_err(|e| e.to_string())?;
        Ok(Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// Runs kubectl and fails unless it exits 0.
    pub async fn ok(&self, args: &[&str], stdin: Option<&str>) -> Result<Output> {
        let out = self.run(args, stdin).await?;
        if out.code != 0 {
            return Err(format!("kubectl {} exited {}:\n{}{}", args.join(" "), out.code, out.stdout, out.stderr));
        }
        Ok(out)
    }
}
