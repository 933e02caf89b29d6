//! `berth-testbin`: the program inside the test images. Built fully static
//! (`-C target-feature=+crt-static`), it runs as the only file of a
//! `FROM scratch` image, so tests need no registry and no base image.
//!
//! Commands (the container's command):
//! - `sleep SECS`: sleep; exit 0 on SIGTERM (prints `got SIGTERM`).
//! - `sleep-ignore SECS`: sleep and ignore SIGTERM (only SIGKILL ends it).
//! - `exit CODE`: exit at once with CODE.
//! - `exit-after SECS CODE`: sleep, then exit with CODE.
//! - `echo-server PORT [TEXT]`: answer every TCP connection with TEXT and
//!   the connection's peer, then close, and every UDP datagram to PORT with
//!   TEXT; exit 0 on SIGTERM.
//! - `alloc MIB`: allocate and touch MIB of memory, then sleep (OOM tests).
//! - `env`: print the environment, then sleep until SIGTERM.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn term_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    if let Err(e) = signal_hook::flag::register(signal_hook::consts::SIGTERM, flag.clone()) {
        eprintln!("cannot handle SIGTERM: {e}");
    }
    flag
}

fn sleep_until(deadline: Option<Instant>, term: Option<&AtomicBool>) -> bool {
    loop {
        if term.is_some_and(|t| t.load(Ordering::Relaxed)) {
            println!("got SIGTERM");
            return true;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn secs(arg: Option<&String>) -> Option<Instant> {
    let s: f64 = arg.and_then(|a| a.parse().ok()).unwrap_or(3600.0);
    Some(Instant::now() + Duration::from_secs_f64(s))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().map(String::as_str).unwrap_or("sleep");
    match command {
        "sleep" => {
            let term = term_flag();
            sleep_until(secs(args.get(1)), Some(&term));
        }
        "sleep-ignore" => {
            sleep_until(secs(args.get(1)), None);
        }
        "exit" => {
            let code = args.get(1).and_then(|c| c.parse().ok()).unwrap_or(0);
            std::process::exit(code);
        }
        "exit-after" => {
            let term = term_flag();
            sleep_until(secs(args.get(1)), Some(&term));
            let code = args.get(2).and_then(|c| c.parse().ok()).unwrap_or(0);
            std::process::exit(code);
        }
        "echo-server" => {
            let term = term_flag();
            let port: u16 = args.get(1).and_then(|p| p.parse().ok()).unwrap_or(8080);
            let text = args
                .get(2)
                .cloned()
                .unwrap_or_else(|| "hello from berth-testbin".to_owned());
            let listener = match std::net::TcpListener::bind(("0.0.0.0", port)) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("cannot listen on {port}: {e}");
                    std::process::exit(2);
                }
            };
            let _ = listener.set_nonblocking(true);
            let udp = std::net::UdpSocket::bind(("0.0.0.0", port)).ok();
            if let Some(u) = &udp {
                let _ = u.set_nonblocking(true);
            }
            let mut buf = [0u8; 512];
            while !term.load(Ordering::Relaxed) {
                let mut idle = true;
                if let Ok((mut stream, peer)) = listener.accept() {
                    let _ = writeln!(stream, "{text} (you are {peer})");
                    idle = false;
                }
                if let Some(u) = &udp
                    && let Ok((_, peer)) = u.recv_from(&mut buf)
                {
                    let _ = u.send_to(text.as_bytes(), peer);
                    idle = false;
                }
                if idle {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        "alloc" => {
            let mib: usize = args.get(1).and_then(|m| m.parse().ok()).unwrap_or(64);
            let mut blocks = Vec::new();
            for _ in 0..mib {
                blocks.push(vec![1u8; 1024 * 1024]);
            }
            println!("allocated {} MiB", blocks.len());
            let term = term_flag();
            sleep_until(None, Some(&term));
        }
        "env" => {
            for (k, v) in std::env::vars() {
                println!("{k}={v}");
            }
            let term = term_flag();
            sleep_until(None, Some(&term));
        }
        other => {
            eprintln!("unknown command {other}");
            std::process::exit(64);
        }
    }
}
