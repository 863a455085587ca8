//! Run with `cargo run -p vireo-examples --bin in_process_server`.

fn main() {
    match vireo_examples::in_process::run_demo("Hello from an embedded Vireo!") {
        Ok(body) => println!("bob received: {body}"),
        Err(e) => {
            eprintln!("demo failed: {e}");
            std::process::exit(1);
        }
    }
}
