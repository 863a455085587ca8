//! Run with `cargo run -p vireo-examples --bin echo_component`.

fn main() {
    match vireo_examples::component::run_demo("Hello, component!") {
        Ok(body) => println!("alice received: {body}"),
        Err(e) => {
            eprintln!("demo failed: {e}");
            std::process::exit(1);
        }
    }
}
