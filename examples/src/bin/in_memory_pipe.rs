//! Run with `cargo run -p vireo-examples --bin in_memory_pipe`.

fn main() {
    match vireo_examples::in_memory::run_demo("Hello through an in-memory pipe!") {
        Ok(msg) => {
            let mut xml = Vec::new();
            msg.write_to(&mut xml, "jabber:client");
            println!("bob received: {}", String::from_utf8_lossy(&xml));
        }
        Err(e) => {
            eprintln!("demo failed: {e}");
            std::process::exit(1);
        }
    }
}
